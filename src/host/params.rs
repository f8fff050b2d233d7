//! Parameters: descriptors and instances, their values and keys, and the parameter suite.
//!
//! The suite's value functions are C-variadic; `shim.c` defines them and calls the
//! `shim_param_*` functions at the bottom of this file with plain arguments (see `shim.rs`).

use std::collections::HashMap;
use std::ffi::{c_char, c_int, c_uint, CString};
use std::sync::{Arc, Weak};

use parking_lot::{Mutex, RwLock};

use super::app::Host;
use super::curve::{Curve, Interp};
use super::ffi::{c_str, c_text, guard, k, ofx, put, reply};
use super::handles::{self, Obj};
use super::props::{Access, PropValue, PropertySet, RO, RW, VAR};
use super::shim::{self, ShimValues};

/// A parameter value, as the host API exposes it.
#[derive(Clone, Debug, PartialEq)]
pub enum ParamValue {
    Int(i32),
    Double(f64),
    Bool(bool),
    Choice(i32),
    /// String, custom and string-choice parameters.
    Str(String),
    Int2([i32; 2]),
    Int3([i32; 3]),
    Double2([f64; 2]),
    Double3([f64; 3]),
    Rgb([f64; 3]),
    Rgba([f64; 4]),
}

impl ParamValue {
    /// The numeric components (for interpolation); `None` for step-only values.
    pub(crate) fn components(&self) -> Option<Vec<f64>> {
        Some(match self {
            ParamValue::Int(v) => vec![*v as f64],
            ParamValue::Double(v) => vec![*v],
            ParamValue::Int2(v) => v.iter().map(|x| *x as f64).collect(),
            ParamValue::Int3(v) => v.iter().map(|x| *x as f64).collect(),
            ParamValue::Double2(v) => v.to_vec(),
            ParamValue::Double3(v) => v.to_vec(),
            ParamValue::Rgb(v) => v.to_vec(),
            ParamValue::Rgba(v) => v.to_vec(),
            ParamValue::Bool(_) | ParamValue::Choice(_) | ParamValue::Str(_) => return None,
        })
    }

    /// The same kind of value with new components (integers rounded).
    pub(crate) fn with_components(&self, c: &[f64]) -> ParamValue {
        let i = |x: f64| x.round().clamp(i32::MIN as f64, i32::MAX as f64) as i32;
        let at = |n: usize| c.get(n).copied().unwrap_or(0.0);
        match self {
            ParamValue::Int(_) => ParamValue::Int(i(at(0))),
            ParamValue::Double(_) => ParamValue::Double(at(0)),
            ParamValue::Int2(_) => ParamValue::Int2([i(at(0)), i(at(1))]),
            ParamValue::Int3(_) => ParamValue::Int3([i(at(0)), i(at(1)), i(at(2))]),
            ParamValue::Double2(_) => ParamValue::Double2([at(0), at(1)]),
            ParamValue::Double3(_) => ParamValue::Double3([at(0), at(1), at(2)]),
            ParamValue::Rgb(_) => ParamValue::Rgb([at(0), at(1), at(2)]),
            ParamValue::Rgba(_) => ParamValue::Rgba([at(0), at(1), at(2), at(3)]),
            other => other.clone(),
        }
    }

    /// Integer-valued components (int, bool, choice and their vectors), for C.
    fn ints(&self) -> Vec<c_int> {
        match self {
            ParamValue::Int(v) | ParamValue::Choice(v) => vec![*v],
            ParamValue::Bool(b) => vec![*b as c_int],
            ParamValue::Int2(v) => v.to_vec(),
            ParamValue::Int3(v) => v.to_vec(),
            _ => Vec::new(),
        }
    }
}

/// The parameter types this host supports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ParamKind {
    Integer,
    Double,
    Boolean,
    Choice,
    StrChoice,
    Rgba,
    Rgb,
    Double2D,
    Integer2D,
    Double3D,
    Integer3D,
    String,
    Custom,
    PushButton,
    Group,
    Page,
}

/// How the C shim moves a kind's values through `...` (keep in step with shim.c).
pub(crate) const SHIM_NONE: c_int = 0;
pub(crate) const SHIM_INT: c_int = 1;
pub(crate) const SHIM_DOUBLE: c_int = 2;
pub(crate) const SHIM_STRING: c_int = 3;

impl ParamKind {
    const ALL: [ParamKind; 16] = [
        ParamKind::Integer,
        ParamKind::Double,
        ParamKind::Boolean,
        ParamKind::Choice,
        ParamKind::StrChoice,
        ParamKind::Rgba,
        ParamKind::Rgb,
        ParamKind::Double2D,
        ParamKind::Integer2D,
        ParamKind::Double3D,
        ParamKind::Integer3D,
        ParamKind::String,
        ParamKind::Custom,
        ParamKind::PushButton,
        ParamKind::Group,
        ParamKind::Page,
    ];

    pub fn type_name(self) -> &'static str {
        k(match self {
            ParamKind::Integer => ofx::kOfxParamTypeInteger,
            ParamKind::Double => ofx::kOfxParamTypeDouble,
            ParamKind::Boolean => ofx::kOfxParamTypeBoolean,
            ParamKind::Choice => ofx::kOfxParamTypeChoice,
            ParamKind::StrChoice => ofx::kOfxParamTypeStrChoice,
            ParamKind::Rgba => ofx::kOfxParamTypeRGBA,
            ParamKind::Rgb => ofx::kOfxParamTypeRGB,
            ParamKind::Double2D => ofx::kOfxParamTypeDouble2D,
            ParamKind::Integer2D => ofx::kOfxParamTypeInteger2D,
            ParamKind::Double3D => ofx::kOfxParamTypeDouble3D,
            ParamKind::Integer3D => ofx::kOfxParamTypeInteger3D,
            ParamKind::String => ofx::kOfxParamTypeString,
            ParamKind::Custom => ofx::kOfxParamTypeCustom,
            ParamKind::PushButton => ofx::kOfxParamTypePushButton,
            ParamKind::Group => ofx::kOfxParamTypeGroup,
            ParamKind::Page => ofx::kOfxParamTypePage,
        })
    }

    pub fn from_type_name(name: &str) -> Option<ParamKind> {
        Self::ALL.into_iter().find(|k| k.type_name() == name)
    }

    /// (shim kind, component count).
    pub fn shim(self) -> (c_int, c_int) {
        match self {
            ParamKind::Integer | ParamKind::Boolean | ParamKind::Choice => (SHIM_INT, 1),
            ParamKind::Integer2D => (SHIM_INT, 2),
            ParamKind::Integer3D => (SHIM_INT, 3),
            ParamKind::Double => (SHIM_DOUBLE, 1),
            ParamKind::Double2D => (SHIM_DOUBLE, 2),
            ParamKind::Double3D | ParamKind::Rgb => (SHIM_DOUBLE, 3),
            ParamKind::Rgba => (SHIM_DOUBLE, 4),
            ParamKind::String | ParamKind::Custom | ParamKind::StrChoice => (SHIM_STRING, 1),
            ParamKind::PushButton | ParamKind::Group | ParamKind::Page => (SHIM_NONE, 0),
        }
    }

    pub fn has_value(self) -> bool {
        self.shim().0 != SHIM_NONE
    }

    pub fn is_double(self) -> bool {
        self.shim().0 == SHIM_DOUBLE
    }

    fn interp(self) -> Interp {
        match self.shim().0 {
            SHIM_DOUBLE => Interp::Linear,
            SHIM_INT
                if matches!(
                    self,
                    ParamKind::Integer | ParamKind::Integer2D | ParamKind::Integer3D
                ) =>
            {
                Interp::LinearRounded
            }
            _ => Interp::Step,
        }
    }

    /// Whether the host can animate this kind at all.
    fn host_animates(self, host: Option<&Host>) -> bool {
        match self {
            ParamKind::Integer
            | ParamKind::Double
            | ParamKind::Rgba
            | ParamKind::Rgb
            | ParamKind::Double2D
            | ParamKind::Integer2D
            | ParamKind::Double3D
            | ParamKind::Integer3D => true,
            ParamKind::String => host.is_some_and(|h| h.options().supports_string_animation),
            _ => false,
        }
    }

    /// Whether `v` is the right variant for this kind.
    pub fn accepts(self, v: &ParamValue) -> bool {
        matches!(
            (self, v),
            (ParamKind::Integer, ParamValue::Int(_))
                | (ParamKind::Double, ParamValue::Double(_))
                | (ParamKind::Boolean, ParamValue::Bool(_))
                | (ParamKind::Choice, ParamValue::Choice(_))
                | (
                    ParamKind::StrChoice | ParamKind::String | ParamKind::Custom,
                    ParamValue::Str(_)
                )
                | (ParamKind::Integer2D, ParamValue::Int2(_))
                | (ParamKind::Integer3D, ParamValue::Int3(_))
                | (ParamKind::Double2D, ParamValue::Double2(_))
                | (ParamKind::Double3D, ParamValue::Double3(_))
                | (ParamKind::Rgb, ParamValue::Rgb(_))
                | (ParamKind::Rgba, ParamValue::Rgba(_))
        )
    }

    /// A value of this kind from int / double / string components.
    fn value_from(
        self,
        ints: &[c_int],
        doubles: &[f64],
        text: Option<String>,
    ) -> Option<ParamValue> {
        let i = |n: usize| ints.get(n).copied().unwrap_or(0);
        let d = |n: usize| doubles.get(n).copied().unwrap_or(0.0);
        Some(match self {
            ParamKind::Integer => ParamValue::Int(i(0)),
            ParamKind::Boolean => ParamValue::Bool(i(0) != 0),
            ParamKind::Choice => ParamValue::Choice(i(0)),
            ParamKind::Integer2D => ParamValue::Int2([i(0), i(1)]),
            ParamKind::Integer3D => ParamValue::Int3([i(0), i(1), i(2)]),
            ParamKind::Double => ParamValue::Double(d(0)),
            ParamKind::Double2D => ParamValue::Double2([d(0), d(1)]),
            ParamKind::Double3D => ParamValue::Double3([d(0), d(1), d(2)]),
            ParamKind::Rgb => ParamValue::Rgb([d(0), d(1), d(2)]),
            ParamKind::Rgba => ParamValue::Rgba([d(0), d(1), d(2), d(3)]),
            ParamKind::String | ParamKind::Custom | ParamKind::StrChoice => ParamValue::Str(text?),
            ParamKind::PushButton | ParamKind::Group | ParamKind::Page => return None,
        })
    }

    /// The kind's default value, read from a descriptor's kOfxParamPropDefault.
    fn default_from(self, props: &PropertySet) -> Option<ParamValue> {
        let name = k(ofx::kOfxParamPropDefault);
        let (kind, n) = self.shim();
        let n = n as usize;
        match kind {
            SHIM_INT => {
                let ints: Vec<c_int> = (0..n).map(|i| props.int(name, i).unwrap_or(0)).collect();
                self.value_from(&ints, &[], None)
            }
            SHIM_DOUBLE => {
                let d: Vec<f64> = (0..n)
                    .map(|i| props.double(name, i).unwrap_or(0.0))
                    .collect();
                self.value_from(&[], &d, None)
            }
            SHIM_STRING => self.value_from(&[], &[], Some(props.str(name, 0).unwrap_or_default())),
            _ => None,
        }
    }

    /// Defines the spec's default properties of a new parameter descriptor.
    fn define_defaults(self, props: &PropertySet, name: &str, host: Option<&Host>) {
        let s = |v: &str| PropValue::Str(vec![v.to_string()]);
        let i = |v: i32| PropValue::Int(vec![v]);
        let (shim, dims) = self.shim();
        let dims = dims as usize;
        props.define(k(ofx::kOfxPropType), s(k(ofx::kOfxTypeParameter)), RO);
        props.define(k(ofx::kOfxParamPropType), s(self.type_name()), RO);
        props.define(k(ofx::kOfxPropName), s(name), RO);
        let labels: [&[u8]; 3] = [
            ofx::kOfxPropLabel,
            ofx::kOfxPropShortLabel,
            ofx::kOfxPropLongLabel,
        ];
        for label in labels {
            props.define(k(label), s(name), RW);
        }
        props.define(k(ofx::kOfxParamPropScriptName), s(name), RW);
        props.define(k(ofx::kOfxParamPropSecret), i(0), RW);
        props.define(k(ofx::kOfxParamPropEnabled), i(1), RW);
        props.define(k(ofx::kOfxParamPropHint), s(""), RW);
        props.define(k(ofx::kOfxParamPropParent), s(""), RW);
        props.define(
            k(ofx::kOfxParamPropDataPtr),
            PropValue::Pointer(vec![0]),
            RW,
        );
        props.define(
            k(ofx::kOfxPropIcon),
            PropValue::Str(vec![String::new(), String::new()]),
            RW,
        );
        match self {
            ParamKind::Group => props.define(k(ofx::kOfxParamPropGroupOpen), i(1), RW),
            ParamKind::Page => {
                props.define(k(ofx::kOfxParamPropPageChild), PropValue::Str(vec![]), VAR)
            }
            _ => {}
        }
        if self == ParamKind::PushButton || !self.has_value() {
            props.define(
                k(ofx::kOfxParamPropInteractV1),
                PropValue::Pointer(vec![0]),
                RW,
            );
            return;
        }
        // Everything with a value.
        let animates = self.host_animates(host) as i32;
        props.define(k(ofx::kOfxParamPropAnimates), i(animates), RW);
        props.define(k(ofx::kOfxParamPropIsAnimating), i(0), RW);
        props.define(k(ofx::kOfxParamPropIsAutoKeying), i(0), RW);
        props.define(k(ofx::kOfxParamPropPersistant), i(1), RW);
        props.define(k(ofx::kOfxParamPropEvaluateOnChange), i(1), RW);
        props.define(k(ofx::kOfxParamPropPluginMayWrite), i(0), RW);
        props.define(k(ofx::kOfxParamPropCanUndo), i(1), RW);
        props.define(
            k(ofx::kOfxParamPropCacheInvalidation),
            s(k(ofx::kOfxParamInvalidateValueChange)),
            RW,
        );
        props.define(
            k(ofx::kOfxParamPropInteractV1),
            PropValue::Pointer(vec![0]),
            RW,
        );
        props.define(
            k(ofx::kOfxParamPropInteractSize),
            PropValue::Double(vec![0.0, 0.0]),
            RW,
        );
        props.define(
            k(ofx::kOfxParamPropInteractSizeAspect),
            PropValue::Double(vec![1.0]),
            RW,
        );
        props.define(
            k(ofx::kOfxParamPropInteractMinimumSize),
            PropValue::Int(vec![10, 10]),
            RW,
        );
        props.define(
            k(ofx::kOfxParamPropInteractPreferedSize),
            PropValue::Int(vec![10, 10]),
            RW,
        );
        props.define(k(ofx::kOfxParamPropHasHostOverlayHandle), i(0), RO);
        props.define(k(ofx::kOfxParamPropUseHostOverlayHandle), i(0), RW);
        let labels: &[&str] = match self {
            ParamKind::Double2D | ParamKind::Integer2D => &["x", "y"],
            ParamKind::Double3D | ParamKind::Integer3D => &["x", "y", "z"],
            ParamKind::Rgb => &["r", "g", "b"],
            ParamKind::Rgba => &["r", "g", "b", "a"],
            _ => &[],
        };
        if !labels.is_empty() {
            let labels = labels.iter().map(|l| l.to_string()).collect();
            props.define(
                k(ofx::kOfxParamPropDimensionLabel),
                PropValue::Str(labels),
                RW,
            );
        }
        match shim {
            SHIM_INT => {
                props.define(
                    k(ofx::kOfxParamPropDefault),
                    PropValue::Int(vec![0; dims]),
                    RW,
                );
                if !matches!(self, ParamKind::Boolean | ParamKind::Choice) {
                    props.define(
                        k(ofx::kOfxParamPropMin),
                        PropValue::Int(vec![i32::MIN; dims]),
                        RW,
                    );
                    props.define(
                        k(ofx::kOfxParamPropMax),
                        PropValue::Int(vec![i32::MAX; dims]),
                        RW,
                    );
                    props.define(
                        k(ofx::kOfxParamPropDisplayMin),
                        PropValue::Int(vec![i32::MIN; dims]),
                        RW,
                    );
                    props.define(
                        k(ofx::kOfxParamPropDisplayMax),
                        PropValue::Int(vec![i32::MAX; dims]),
                        RW,
                    );
                }
            }
            SHIM_DOUBLE => {
                props.define(
                    k(ofx::kOfxParamPropDefault),
                    PropValue::Double(vec![0.0; dims]),
                    RW,
                );
                props.define(
                    k(ofx::kOfxParamPropMin),
                    PropValue::Double(vec![-f64::MAX; dims]),
                    RW,
                );
                props.define(
                    k(ofx::kOfxParamPropMax),
                    PropValue::Double(vec![f64::MAX; dims]),
                    RW,
                );
                props.define(
                    k(ofx::kOfxParamPropDisplayMin),
                    PropValue::Double(vec![-f64::MAX; dims]),
                    RW,
                );
                props.define(
                    k(ofx::kOfxParamPropDisplayMax),
                    PropValue::Double(vec![f64::MAX; dims]),
                    RW,
                );
                props.define(
                    k(ofx::kOfxParamPropIncrement),
                    PropValue::Double(vec![1.0]),
                    RW,
                );
                props.define(k(ofx::kOfxParamPropDigits), i(2), RW);
                if matches!(
                    self,
                    ParamKind::Double | ParamKind::Double2D | ParamKind::Double3D
                ) {
                    props.define(
                        k(ofx::kOfxParamPropDoubleType),
                        s(k(ofx::kOfxParamDoubleTypePlain)),
                        RW,
                    );
                    let canonical = s(k(ofx::kOfxParamCoordinatesCanonical));
                    props.define(k(ofx::kOfxParamPropDefaultCoordinateSystem), canonical, RW);
                }
                if self == ParamKind::Double {
                    props.define(k(ofx::kOfxParamPropShowTimeMarker), i(0), RW);
                }
            }
            _ => props.define(k(ofx::kOfxParamPropDefault), s(""), RW),
        }
        match self {
            ParamKind::Choice => {
                props.define(
                    k(ofx::kOfxParamPropChoiceOption),
                    PropValue::Str(vec![]),
                    VAR,
                );
                props.define(
                    k(ofx::kOfxParamPropChoiceOrder),
                    PropValue::Int(vec![]),
                    VAR,
                );
            }
            ParamKind::StrChoice => {
                props.define(
                    k(ofx::kOfxParamPropChoiceOption),
                    PropValue::Str(vec![]),
                    VAR,
                );
                props.define(k(ofx::kOfxParamPropChoiceEnum), PropValue::Str(vec![]), VAR);
            }
            ParamKind::String => {
                props.define(
                    k(ofx::kOfxParamPropStringMode),
                    s(k(ofx::kOfxParamStringIsSingleLine)),
                    RW,
                );
                props.define(k(ofx::kOfxParamPropStringFilePathExists), i(1), RW);
            }
            ParamKind::Custom => {
                props.define(
                    k(ofx::kOfxParamPropCustomInterpCallbackV1),
                    PropValue::Pointer(vec![0]),
                    RW,
                );
            }
            _ => {}
        }
    }
}

/// Instance parameter properties that only the host changes.
const INSTANCE_READ_ONLY: [&[u8]; 8] = [
    ofx::kOfxPropType,
    ofx::kOfxParamPropType,
    ofx::kOfxPropName,
    ofx::kOfxParamPropScriptName,
    ofx::kOfxParamPropAnimates,
    ofx::kOfxParamPropIsAnimating,
    ofx::kOfxParamPropParent,
    ofx::kOfxParamPropDefault,
];

/// The value of an instance parameter: a constant, and keys that override it when present.
#[derive(Clone, Debug)]
struct ParamState {
    value: ParamValue,
    curve: Curve,
}

/// One parameter (descriptor or instance).
pub(crate) struct Param {
    pub handle: usize,
    pub name: String,
    pub kind: ParamKind,
    pub props: Arc<PropertySet>,
    pub instance: bool,
    host: Weak<Host>,
    state: Mutex<Option<ParamState>>,
    /// Strings handed to the plugin, interned so every pointer stays valid while the
    /// parameter lives, even when other threads read or change the value meanwhile.
    strings: Mutex<HashMap<String, CString>>,
}

impl Param {
    fn register(self) -> Arc<Param> {
        let p = Arc::new(self);
        handles::insert(p.handle, Obj::Param(p.clone()));
        p
    }

    fn descriptor(kind: ParamKind, name: &str, host: Weak<Host>) -> Arc<Param> {
        let props = PropertySet::new("parameter descriptor", Access::Open);
        kind.define_defaults(&props, name, host.upgrade().as_deref());
        let p = Param {
            handle: handles::reserve(),
            name: name.to_string(),
            kind,
            props,
            instance: false,
            host,
            state: Mutex::new(None),
            strings: Mutex::new(HashMap::new()),
        };
        p.register()
    }

    fn instantiate(desc: &Param, host: Weak<Host>) -> Arc<Param> {
        let props = PropertySet::new("parameter instance", Access::Strict);
        props.copy_from(&desc.props, RW);
        props.host_set(
            k(ofx::kOfxPropType),
            PropValue::Str(vec![k(ofx::kOfxTypeParameterInstance).into()]),
        );
        let state = desc.kind.default_from(&desc.props).map(|value| ParamState {
            value,
            curve: Curve::default(),
        });
        if state.is_some() {
            let wanted = props.int(k(ofx::kOfxParamPropAnimates), 0).unwrap_or(0) != 0;
            let animates = wanted && desc.kind.host_animates(host.upgrade().as_deref());
            props.host_set(
                k(ofx::kOfxParamPropAnimates),
                PropValue::Int(vec![animates as i32]),
            );
            props.host_set(k(ofx::kOfxParamPropIsAnimating), PropValue::Int(vec![0]));
        }
        let ro: Vec<&str> = INSTANCE_READ_ONLY.iter().map(|n| k(n)).collect();
        props.set_flags(&ro, true);
        let p = Param {
            handle: handles::reserve(),
            name: desc.name.clone(),
            kind: desc.kind,
            props,
            instance: true,
            host,
            state: Mutex::new(state),
            strings: Mutex::new(HashMap::new()),
        };
        p.register()
    }

    pub fn release(&self) {
        handles::remove(self.handle);
        self.props.release();
    }

    pub fn animates(&self) -> bool {
        self.props
            .int(k(ofx::kOfxParamPropAnimates), 0)
            .unwrap_or(0)
            != 0
    }

    fn current_time(&self) -> f64 {
        self.host.upgrade().map(|h| h.time()).unwrap_or(0.0)
    }

    /// The value at `t`; `None` for descriptors and valueless kinds.
    pub fn value_at(&self, t: f64) -> Option<ParamValue> {
        let st = self.state.lock();
        let st = st.as_ref()?;
        Some(
            st.curve
                .value_at(t, self.kind.interp())
                .unwrap_or_else(|| st.value.clone()),
        )
    }

    pub fn num_keys(&self) -> usize {
        self.state.lock().as_ref().map_or(0, |s| s.curve.len())
    }

    /// Checks a value against the parameter's current options.
    pub fn validate(&self, v: &ParamValue) -> Result<(), String> {
        if !self.kind.accepts(v) {
            return Err(format!(
                "{} is a {}, not {v:?}",
                self.name,
                self.kind.type_name()
            ));
        }
        match v {
            ParamValue::Choice(c) => {
                let n = self.props.strs(k(ofx::kOfxParamPropChoiceOption)).len();
                if *c < 0 || *c as usize >= n {
                    return Err(format!(
                        "choice {c} is out of range for {} ({n} options)",
                        self.name
                    ));
                }
            }
            ParamValue::Str(s) if self.kind == ParamKind::StrChoice => {
                let options = self.props.strs(k(ofx::kOfxParamPropChoiceEnum));
                if !options.iter().any(|o| o == s) {
                    return Err(format!(
                        "{s:?} is not one of {}'s options {options:?}",
                        self.name
                    ));
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// Sets the constant value (`None`) or a key (`Some(t)`); the caller validated `v`.
    pub fn store(&self, at: Option<f64>, v: ParamValue) -> Result<(), i32> {
        let mut guard = self.state.lock();
        let st = guard.as_mut().ok_or(ofx::kOfxStatErrBadHandle)?;
        match at {
            Some(t) => st.curve.set_key(t, v),
            None => st.value = v,
        }
        let animating = !st.curve.is_empty();
        drop(guard);
        self.props.host_set(
            k(ofx::kOfxParamPropIsAnimating),
            PropValue::Int(vec![animating as i32]),
        );
        Ok(())
    }

    fn with_curve<R>(&self, f: impl FnOnce(&Curve) -> R) -> Option<R> {
        self.state.lock().as_ref().map(|st| f(&st.curve))
    }

    fn edit_curve<R>(&self, f: impl FnOnce(&mut Curve) -> R) -> Option<R> {
        let mut guard = self.state.lock();
        let st = guard.as_mut()?;
        let r = f(&mut st.curve);
        let animating = !st.curve.is_empty();
        drop(guard);
        self.props.host_set(
            k(ofx::kOfxParamPropIsAnimating),
            PropValue::Int(vec![animating as i32]),
        );
        Some(r)
    }

    fn interned(&self, s: &str) -> *const c_char {
        let mut strings = self.strings.lock();
        strings
            .entry(s.to_string())
            .or_insert_with(|| super::ffi::cstring(s))
            .as_ptr()
    }
}

/// A parameter set: its own property set and the parameters in definition order.
pub(crate) struct ParamSet {
    pub handle: usize,
    pub props: Arc<PropertySet>,
    pub instance: bool,
    host: Weak<Host>,
    params: RwLock<Vec<Arc<Param>>>,
}

impl ParamSet {
    pub fn descriptor(host: Weak<Host>) -> Arc<ParamSet> {
        let props = PropertySet::new("parameter set descriptor", Access::Open);
        props.define(
            k(ofx::kOfxPluginPropParamPageOrder),
            PropValue::Str(vec![]),
            VAR,
        );
        Self::register(props, false, host, Vec::new())
    }

    /// Instance parameters for every descriptor parameter, values at their defaults.
    pub fn instantiate(desc: &ParamSet, host: Weak<Host>) -> Arc<ParamSet> {
        let props = PropertySet::new("parameter set instance", Access::Strict);
        props.copy_from(&desc.props, RO);
        props.define(
            k(ofx::kOfxPropParamSetNeedsSyncing),
            PropValue::Int(vec![0]),
            RW,
        );
        let params = desc
            .params()
            .iter()
            .map(|p| Param::instantiate(p, host.clone()))
            .collect();
        Self::register(props, true, host, params)
    }

    fn register(
        props: Arc<PropertySet>,
        instance: bool,
        host: Weak<Host>,
        params: Vec<Arc<Param>>,
    ) -> Arc<ParamSet> {
        let set = Arc::new(ParamSet {
            handle: handles::reserve(),
            props,
            instance,
            host,
            params: RwLock::new(params),
        });
        handles::insert(set.handle, Obj::ParamSet(set.clone()));
        set
    }

    pub fn params(&self) -> Vec<Arc<Param>> {
        self.params.read().clone()
    }

    pub fn find(&self, name: &str) -> Option<Arc<Param>> {
        self.params.read().iter().find(|p| p.name == name).cloned()
    }

    /// Frees this set, its properties and every parameter.
    pub fn release(&self) {
        handles::remove(self.handle);
        self.props.release();
        for p in self.params.read().iter() {
            p.release();
        }
    }

    fn define(&self, kind: ParamKind, name: &str) -> Result<Arc<Param>, i32> {
        // A broken host may give a parameter another type than the plugin asked for.
        let kind = self
            .host
            .upgrade()
            .and_then(|h| {
                let overrides = &h.options().param_type_overrides;
                let (_, ty) = overrides.iter().find(|(n, _)| n == name)?;
                ParamKind::from_type_name(ty)
            })
            .unwrap_or(kind);
        let mut params = self.params.write();
        if params.iter().any(|p| p.name == name) {
            return Err(ofx::kOfxStatErrExists);
        }
        let p = Param::descriptor(kind, name, self.host.clone());
        params.push(p.clone());
        Ok(p)
    }
}

// ----- the parameter suite (non-variadic part) -----

unsafe extern "C" fn param_define(
    set: ofx::OfxParamSetHandle,
    param_type: *const c_char,
    name: *const c_char,
    props_out: *mut ofx::OfxPropertySetHandle,
) -> ofx::OfxStatus {
    guard(|| unsafe {
        let Some(set) = handles::param_set(set as usize) else {
            return ofx::kOfxStatErrBadHandle;
        };
        if set.instance {
            // Parameters are defined while describing, never on instances.
            return ofx::kOfxStatErrUnsupported;
        }
        let Some(ty) = c_text(param_type) else {
            return ofx::kOfxStatErrUnknown;
        };
        let Some(name) = c_text(name) else {
            return ofx::kOfxStatErrValue;
        };
        if ty == k(ofx::kOfxParamTypeBytes) {
            return ofx::kOfxStatErrUnsupported;
        }
        let Some(kind) = ParamKind::from_type_name(&ty) else {
            return ofx::kOfxStatErrUnknown;
        };
        match set.define(kind, &name) {
            Ok(p) => {
                if !props_out.is_null() {
                    put(props_out, p.props.as_handle());
                }
                ofx::kOfxStatOK
            }
            Err(e) => e,
        }
    })
}

unsafe extern "C" fn param_get_handle(
    set: ofx::OfxParamSetHandle,
    name: *const c_char,
    param_out: *mut ofx::OfxParamHandle,
    props_out: *mut ofx::OfxPropertySetHandle,
) -> ofx::OfxStatus {
    guard(|| unsafe {
        let Some(set) = handles::param_set(set as usize) else {
            return ofx::kOfxStatErrBadHandle;
        };
        let Some(name) = c_text(name) else {
            return ofx::kOfxStatErrUnknown;
        };
        let Some(p) = set.find(&name) else {
            return ofx::kOfxStatErrUnknown;
        };
        if param_out.is_null() {
            return ofx::kOfxStatErrValue;
        }
        put(param_out, p.handle as ofx::OfxParamHandle);
        if !props_out.is_null() {
            put(props_out, p.props.as_handle());
        }
        ofx::kOfxStatOK
    })
}

unsafe extern "C" fn param_set_get_property_set(
    set: ofx::OfxParamSetHandle,
    out: *mut ofx::OfxPropertySetHandle,
) -> ofx::OfxStatus {
    // SAFETY: `out` comes from the plugin, null or writable.
    guard(|| unsafe {
        reply(
            handles::param_set(set as usize).map(|set| set.props.as_handle()),
            out,
        )
    })
}

unsafe extern "C" fn param_get_property_set(
    param: ofx::OfxParamHandle,
    out: *mut ofx::OfxPropertySetHandle,
) -> ofx::OfxStatus {
    // SAFETY: `out` comes from the plugin, null or writable.
    guard(|| unsafe {
        reply(
            handles::param(param as usize).map(|p| p.props.as_handle()),
            out,
        )
    })
}

/// An instance parameter with a value, or the status to answer.
fn valued_instance(h: ofx::OfxParamHandle) -> Result<Arc<Param>, i32> {
    let p = handles::param(h as usize).ok_or(ofx::kOfxStatErrBadHandle)?;
    if !p.instance {
        // Descriptors have defaults, not values.
        return Err(ofx::kOfxStatErrBadHandle);
    }
    if !p.kind.has_value() {
        return Err(ofx::kOfxStatErrUnsupported);
    }
    Ok(p)
}

fn to_status(r: Result<(), i32>) -> i32 {
    r.err().unwrap_or(ofx::kOfxStatOK)
}

unsafe extern "C" fn param_get_num_keys(
    h: ofx::OfxParamHandle,
    out: *mut c_uint,
) -> ofx::OfxStatus {
    guard(|| {
        to_status(valued_instance(h).and_then(|p| {
            if out.is_null() {
                return Err(ofx::kOfxStatErrValue);
            }
            unsafe { put(out, p.num_keys() as c_uint) };
            Ok(())
        }))
    })
}

unsafe extern "C" fn param_get_key_time(
    h: ofx::OfxParamHandle,
    nth: c_uint,
    out: *mut f64,
) -> ofx::OfxStatus {
    guard(|| {
        to_status(valued_instance(h).and_then(|p| {
            if out.is_null() {
                return Err(ofx::kOfxStatErrValue);
            }
            let t = p
                .with_curve(|c| c.key_time(nth as usize))
                .flatten()
                .ok_or(ofx::kOfxStatErrBadIndex)?;
            unsafe { put(out, t) };
            Ok(())
        }))
    })
}

unsafe extern "C" fn param_get_key_index(
    h: ofx::OfxParamHandle,
    t: f64,
    direction: c_int,
    out: *mut c_int,
) -> ofx::OfxStatus {
    guard(|| {
        to_status(valued_instance(h).and_then(|p| {
            if out.is_null() {
                return Err(ofx::kOfxStatErrValue);
            }
            let i = p
                .with_curve(|c| c.key_index(t, direction))
                .flatten()
                .ok_or(ofx::kOfxStatFailed)?;
            unsafe { put(out, i as c_int) };
            Ok(())
        }))
    })
}

unsafe extern "C" fn param_delete_key(h: ofx::OfxParamHandle, t: f64) -> ofx::OfxStatus {
    guard(|| {
        to_status(
            valued_instance(h).and_then(|p| match p.edit_curve(|c| c.delete_key(t)) {
                Some(true) => Ok(()),
                _ => Err(ofx::kOfxStatErrBadIndex),
            }),
        )
    })
}

unsafe extern "C" fn param_delete_all_keys(h: ofx::OfxParamHandle) -> ofx::OfxStatus {
    guard(|| to_status(valued_instance(h).map(|p| p.edit_curve(Curve::clear).unwrap_or(()))))
}

unsafe extern "C" fn param_copy(
    to: ofx::OfxParamHandle,
    from: ofx::OfxParamHandle,
    offset: f64,
    range: *const ofx::OfxRangeD,
) -> ofx::OfxStatus {
    guard(|| {
        let (to, from) = match (valued_instance(to), valued_instance(from)) {
            (Ok(a), Ok(b)) => (a, b),
            (Err(e), _) | (_, Err(e)) => return e,
        };
        if to.kind != from.kind {
            return ofx::kOfxStatErrValue;
        }
        let range = unsafe { range.as_ref() }.map(|r| (r.min, r.max));
        let Some(src) = from.state.lock().clone() else {
            return ofx::kOfxStatErrBadHandle;
        };
        let copied = ParamState {
            value: src.value,
            curve: src.curve.shifted(offset, range),
        };
        let animating = !copied.curve.is_empty();
        *to.state.lock() = Some(copied);
        to.props.host_set(
            k(ofx::kOfxParamPropIsAnimating),
            PropValue::Int(vec![animating as i32]),
        );
        ofx::kOfxStatOK
    })
}

unsafe extern "C" fn param_edit_begin(
    set: ofx::OfxParamSetHandle,
    _name: *const c_char,
) -> ofx::OfxStatus {
    guard(|| {
        if handles::param_set(set as usize).is_some() {
            ofx::kOfxStatOK
        } else {
            ofx::kOfxStatErrBadHandle
        }
    })
}

unsafe extern "C" fn param_edit_end(set: ofx::OfxParamSetHandle) -> ofx::OfxStatus {
    guard(|| {
        if handles::param_set(set as usize).is_some() {
            ofx::kOfxStatOK
        } else {
            ofx::kOfxStatErrBadHandle
        }
    })
}

// ----- the variadic part: defined in shim.c, which calls the functions below -----

/// Get modes (keep in step with shim.c).
const GET_VALUE: c_int = 0;
const GET_AT_TIME: c_int = 1;
const GET_DERIVATIVE: c_int = 2;
const GET_INTEGRAL: c_int = 3;

/// For the shim: the parameter's value kind (`SHIM_*`) and component count, or -1 for a
/// handle that is not a live parameter.
///
/// # Safety
/// `count` is null or writable.
pub(crate) unsafe extern "C" fn shim_param_kind(
    h: ofx::OfxParamHandle,
    count: *mut c_int,
) -> c_int {
    super::ffi::guard_or(-1, || {
        let Some(p) = handles::param(h as usize) else {
            return -1;
        };
        let (kind, n) = p.kind.shim();
        if !count.is_null() {
            unsafe { put(count, n) };
        }
        kind
    })
}

/// For the shim: reads a value (mode `GET_*`) into `n` plugin pointers.
///
/// # Safety
/// `outs` holds `n` pointers taken from the plugin's `...`.
pub(crate) unsafe extern "C" fn shim_param_get(
    h: ofx::OfxParamHandle,
    mode: c_int,
    t1: f64,
    t2: f64,
    outs: *const *mut std::ffi::c_void,
    n: c_int,
) -> ofx::OfxStatus {
    guard(|| {
        let p = match valued_instance(h) {
            Ok(p) => p,
            Err(e) => return e,
        };
        let (kind, count) = p.kind.shim();
        if n != count || outs.is_null() {
            return ofx::kOfxStatErrValue;
        }
        let outs = unsafe { std::slice::from_raw_parts(outs, n as usize) };
        if outs.iter().any(|o| o.is_null()) {
            return ofx::kOfxStatErrValue;
        }
        let doubles = match mode {
            GET_VALUE | GET_AT_TIME => {
                let t = if mode == GET_VALUE {
                    p.current_time()
                } else {
                    t1
                };
                let Some(v) = p.value_at(t) else {
                    return ofx::kOfxStatErrBadHandle;
                };
                match (kind, &v) {
                    (SHIM_STRING, ParamValue::Str(s)) => {
                        unsafe { put(outs[0] as *mut *const c_char, p.interned(s)) };
                        return ofx::kOfxStatOK;
                    }
                    (SHIM_INT, _) => {
                        for (o, x) in outs.iter().zip(v.ints()) {
                            unsafe { put(*o as *mut c_int, x) };
                        }
                        return ofx::kOfxStatOK;
                    }
                    _ => v.components().unwrap_or_default(),
                }
            }
            GET_DERIVATIVE | GET_INTEGRAL => {
                if !p.kind.is_double() {
                    return ofx::kOfxStatErrUnsupported;
                }
                let st = p.state.lock().clone();
                let Some(st) = st else {
                    return ofx::kOfxStatErrBadHandle;
                };
                let constant = st.value.components().unwrap_or_default();
                if mode == GET_DERIVATIVE {
                    st.curve
                        .derivative(t1)
                        .unwrap_or_else(|| vec![0.0; constant.len()])
                } else {
                    st.curve
                        .integral(t1, t2)
                        .unwrap_or_else(|| constant.iter().map(|c| c * (t2 - t1)).collect())
                }
            }
            _ => return ofx::kOfxStatErrValue,
        };
        for (o, x) in outs.iter().zip(doubles) {
            unsafe { put(*o as *mut f64, x) };
        }
        ofx::kOfxStatOK
    })
}

/// For the shim: sets the value (`at_time` 0) or a key at `t` (`at_time` 1).
///
/// # Safety
/// `values` points at a `ShimValues` filled by the shim.
pub(crate) unsafe extern "C" fn shim_param_set(
    h: ofx::OfxParamHandle,
    at_time: c_int,
    t: f64,
    values: *const ShimValues,
) -> ofx::OfxStatus {
    guard(|| {
        let p = match valued_instance(h) {
            Ok(p) => p,
            Err(e) => return e,
        };
        let Some(values) = (unsafe { values.as_ref() }) else {
            return ofx::kOfxStatErrValue;
        };
        let text = unsafe { c_str(values.string) }.map(|s| s.to_string_lossy().into_owned());
        if p.kind.shim().0 == SHIM_STRING && text.is_none() {
            return ofx::kOfxStatErrValue;
        }
        let Some(v) = p.kind.value_from(&values.ints, &values.doubles, text) else {
            return ofx::kOfxStatErrValue;
        };
        if p.validate(&v).is_err() {
            return ofx::kOfxStatErrValue;
        }
        // A key at a time when the parameter animates; otherwise the one value. A plain set
        // on a parameter that already has keys sets the key at the current time.
        let at = if at_time != 0 {
            p.animates().then_some(t)
        } else {
            (p.num_keys() > 0).then(|| p.current_time())
        };
        to_status(p.store(at, v))
    })
}

/// The parameter suite, version 1.
pub(crate) static PARAMETER_SUITE_V1: ofx::OfxParameterSuiteV1 = ofx::OfxParameterSuiteV1 {
    paramDefine: Some(param_define),
    paramGetHandle: Some(param_get_handle),
    paramSetGetPropertySet: Some(param_set_get_property_set),
    paramGetPropertySet: Some(param_get_property_set),
    paramGetValue: Some(shim::genclip_shim_param_get_value),
    paramGetValueAtTime: Some(shim::genclip_shim_param_get_value_at_time),
    paramGetDerivative: Some(shim::genclip_shim_param_get_derivative),
    paramGetIntegral: Some(shim::genclip_shim_param_get_integral),
    paramSetValue: Some(shim::genclip_shim_param_set_value),
    paramSetValueAtTime: Some(shim::genclip_shim_param_set_value_at_time),
    paramGetNumKeys: Some(param_get_num_keys),
    paramGetKeyTime: Some(param_get_key_time),
    paramGetKeyIndex: Some(param_get_key_index),
    paramDeleteKey: Some(param_delete_key),
    paramDeleteAllKeys: Some(param_delete_all_keys),
    paramCopy: Some(param_copy),
    paramEditBegin: Some(param_edit_begin),
    paramEditEnd: Some(param_edit_end),
};

//! A loaded plugin: loading, describing, creating instances, and sending actions.

use std::collections::HashMap;
use std::ffi::{c_char, c_void, CString};
use std::sync::Arc;
use std::time::Instant;

use parking_lot::Mutex;

use super::app::Host;
use super::bundle::{Bundle, PluginInfo};
use super::effect::{Effect, EffectKind};
use super::ffi::{k, ofx};
use super::handles;
use super::instance::{self, Instance};
use super::props::{Access, PropValue, PropertySet, PropertySnapshot, TempProps, RO};
use super::threadctx::{self, Frame};
use super::HostError;

/// The plugin's main entry point.
pub type MainEntry = unsafe extern "C" fn(
    *const c_char,
    *const c_void,
    ofx::OfxPropertySetHandle,
    ofx::OfxPropertySetHandle,
) -> ofx::OfxStatus;

/// What a context descriptor holds after DescribeInContext.
#[derive(Clone, Debug)]
pub struct ContextDescription {
    pub context: String,
    /// Clips in definition order.
    pub clips: Vec<(String, PropertySnapshot)>,
    /// Parameters in definition order.
    pub params: Vec<ParamDescription>,
}

#[derive(Clone, Debug)]
pub struct ParamDescription {
    pub name: String,
    /// e.g. "OfxParamTypeDouble".
    pub param_type: String,
    pub props: PropertySnapshot,
}

/// A plugin of a bundle, loaded into a host.
pub struct Plugin {
    pub(crate) inner: Arc<PluginInner>,
}

pub(crate) struct PluginInner {
    pub host: Arc<Host>,
    pub bundle: Arc<Bundle>,
    pub info: PluginInfo,
    pub entry: MainEntry,
    descriptor: Mutex<Option<Arc<Effect>>>,
    contexts: Mutex<HashMap<String, Arc<Effect>>>,
    /// Every descriptor made, kept alive (and its handles valid) while the plugin is.
    descriptors: Mutex<Vec<Arc<Effect>>>,
}

impl Drop for PluginInner {
    fn drop(&mut self) {
        for d in self.descriptors.lock().drain(..) {
            d.release();
        }
    }
}

impl Host {
    /// Loads plugin `identifier` of `bundle`: checks its API, gives it this host
    /// (OfxSetHost when exported, then setHost) and sends kOfxActionLoad.
    pub fn load_plugin(
        self: &Arc<Self>,
        bundle: &Arc<Bundle>,
        identifier: &str,
    ) -> Result<Plugin, HostError> {
        let n = bundle.plugins().len();
        let found = bundle
            .plugins()
            .into_iter()
            .filter(|p| p.identifier == identifier)
            .max_by_key(|p| p.version)
            .and_then(|p| bundle.plugin(p.index));
        let Some((info, raw)) = found else {
            return Err(HostError::host(format!(
                "{} has no plugin {identifier:?} ({n} plugin(s) listed)",
                bundle.path().display()
            )));
        };
        if info.api != k(ofx::kOfxImageEffectPluginApi)
            || info.api_version != ofx::kOfxImageEffectPluginApiVersion
        {
            return Err(HostError::host(format!(
                "plugin {identifier} has API {:?} version {}; this host runs {} version {}",
                info.api,
                info.api_version,
                k(ofx::kOfxImageEffectPluginApi),
                ofx::kOfxImageEffectPluginApiVersion
            )));
        }
        // SAFETY: `raw` came from OfxGetPlugin and the plugin keeps it alive while loaded.
        let plugin = unsafe { &*raw };
        let Some(entry) = plugin.mainEntry else {
            return Err(HostError::host(format!(
                "plugin {identifier} has no mainEntry"
            )));
        };
        if let Some(set_host) = bundle.set_host() {
            let st = unsafe { set_host(self.ofx_host()) };
            if st != ofx::kOfxStatOK {
                return Err(HostError::status(
                    st,
                    format!("OfxSetHost for {identifier}"),
                ));
            }
        }
        if let Some(set_host) = plugin.setHost {
            unsafe { set_host(self.ofx_host()) };
        }
        let inner = Arc::new(PluginInner {
            host: self.clone(),
            bundle: bundle.clone(),
            info,
            entry,
            descriptor: Mutex::new(None),
            contexts: Mutex::new(HashMap::new()),
            descriptors: Mutex::new(Vec::new()),
        });
        inner.run_checked(ofx::kOfxActionLoad, 0, None, None, None)?;
        Ok(Plugin { inner })
    }
}

impl PluginInner {
    /// Sends one action and returns the plugin's status.
    pub fn run(
        &self,
        action: &[u8],
        handle: usize,
        in_args: Option<&PropertySet>,
        out_args: Option<&PropertySet>,
    ) -> ofx::OfxStatus {
        let _frame = threadctx::push_frame(Frame {
            host: Arc::downgrade(&self.host),
            effect: handle,
            started: Instant::now(),
        });
        let arg = |p: Option<&PropertySet>| p.map_or(std::ptr::null_mut(), |p| p.as_handle());
        unsafe {
            (self.entry)(
                action.as_ptr() as *const c_char,
                handle as *const c_void,
                arg(in_args),
                arg(out_args),
            )
        }
    }

    /// [`run`](Self::run), with anything but OK or ReplyDefault an error that quotes what the
    /// plugin posted meanwhile.
    pub fn run_checked(
        &self,
        action: &[u8],
        handle: usize,
        in_args: Option<&PropertySet>,
        out_args: Option<&PropertySet>,
        time: Option<f64>,
    ) -> Result<ofx::OfxStatus, HostError> {
        let since = self.host.message_count();
        let st = self.run(action, handle, in_args, out_args);
        if st == ofx::kOfxStatOK || st == ofx::kOfxStatReplyDefault {
            return Ok(st);
        }
        Err(HostError::action(
            k(action),
            time,
            st,
            &self.host.messages_since(since, handle),
        ))
    }

    #[cfg(test)]
    pub fn descriptors_for_tests(&self) -> Vec<Arc<Effect>> {
        self.descriptors.lock().clone()
    }

    pub fn descriptor(&self) -> Option<Arc<Effect>> {
        self.descriptor.lock().clone()
    }

    fn describe(&self) -> Result<Arc<Effect>, HostError> {
        let file = self.bundle.path().to_string_lossy().into_owned();
        let d = Effect::plugin_descriptor(&self.host, &file);
        self.descriptors.lock().push(d.clone());
        self.run_checked(ofx::kOfxActionDescribe, d.handle, None, None, None)?;
        *self.descriptor.lock() = Some(d.clone());
        Ok(d)
    }

    fn described(&self) -> Result<Arc<Effect>, HostError> {
        match self.descriptor() {
            Some(d) => Ok(d),
            None => self.describe(),
        }
    }

    fn describe_in_context(&self, context: &str) -> Result<Arc<Effect>, HostError> {
        let plugin = self.described()?;
        let d = Effect::context_descriptor(&self.host, &plugin, context);
        self.descriptors.lock().push(d.clone());
        let in_args = TempProps(PropertySet::new(
            "describe in context in args",
            Access::Strict,
        ));
        in_args.0.define(
            k(ofx::kOfxImageEffectPropContext),
            PropValue::Str(vec![context.into()]),
            RO,
        );
        self.run_checked(
            ofx::kOfxImageEffectActionDescribeInContext,
            d.handle,
            Some(&in_args.0),
            None,
            None,
        )?;
        self.contexts.lock().insert(context.to_string(), d.clone());
        Ok(d)
    }
}

impl Plugin {
    pub fn info(&self) -> &PluginInfo {
        &self.inner.info
    }

    pub fn host(&self) -> &Arc<Host> {
        &self.inner.host
    }

    /// Sends kOfxActionDescribe on a fresh plugin descriptor.
    pub fn describe(&self) -> Result<(), HostError> {
        self.inner.describe().map(|_| ())
    }

    /// The plugin descriptor's properties (empty before describe).
    pub fn descriptor_props(&self) -> PropertySnapshot {
        self.inner
            .descriptor()
            .map(|d| d.props.snapshot())
            .unwrap_or_default()
    }

    /// kOfxImageEffectPropSupportedContexts of the plugin descriptor.
    pub fn supported_contexts(&self) -> Vec<String> {
        self.inner
            .descriptor()
            .map(|d| d.props.strs(k(ofx::kOfxImageEffectPropSupportedContexts)))
            .unwrap_or_default()
    }

    /// Sends DescribeInContext on a fresh context descriptor (describing first if needed).
    pub fn describe_in_context(&self, context: &str) -> Result<ContextDescription, HostError> {
        let d = self.inner.describe_in_context(context)?;
        Ok(ContextDescription {
            context: context.to_string(),
            clips: d
                .clips()
                .iter()
                .map(|c| (c.name.clone(), c.props.snapshot()))
                .collect(),
            params: d
                .params
                .params()
                .iter()
                .map(|p| ParamDescription {
                    name: p.name.clone(),
                    param_type: p.kind.type_name().to_string(),
                    props: p.props.snapshot(),
                })
                .collect(),
        })
    }

    /// Builds an instance in `context` (describing in it first if not yet done) and sends
    /// kOfxActionCreateInstance.
    pub fn create_instance(&self, context: &str) -> Result<Instance, HostError> {
        let existing = self.inner.contexts.lock().get(context).cloned();
        let desc = match existing {
            Some(d) => d,
            None => self.inner.describe_in_context(context)?,
        };
        let plugin = self.inner.described()?;
        let effect = Effect::instance(&self.inner.host, &plugin, &desc, context);
        if let Err(e) = self.inner.run_checked(
            ofx::kOfxActionCreateInstance,
            effect.handle,
            None,
            None,
            None,
        ) {
            // A failed create gets no destroy; the host just forgets the instance.
            effect.release();
            return Err(e);
        }
        Ok(Instance::new(self.inner.clone(), effect, context))
    }

    /// The raw entry point, for tests that send deliberately bad handles.
    pub fn main_entry(&self) -> MainEntry {
        self.inner.entry
    }

    /// Sends any action with in args built from `in_args` (NULL when `None`) and the out
    /// args that action expects (NULL when it has none); returns the status and the out args.
    pub fn call_action(
        &self,
        action: &str,
        handle: *const c_void,
        in_args: Option<&PropertySnapshot>,
    ) -> (i32, PropertySnapshot) {
        let Ok(action_c) = CString::new(action) else {
            return (ofx::kOfxStatErrValue, PropertySnapshot::new());
        };
        let in_props = in_args
            .map(|s| TempProps(PropertySet::from_snapshot("in args", Access::Strict, s, RO)));
        let effect = handles::effect(handle as usize).filter(|e| e.kind == EffectKind::Instance);
        let out_props =
            instance::out_args_for(action, effect.as_deref(), &self.inner.host).map(TempProps);
        let st = self.inner.run(
            action_c.as_bytes_with_nul(),
            handle as usize,
            in_props.as_ref().map(|p| &*p.0),
            out_props.as_ref().map(|p| &*p.0),
        );
        (st, out_props.map(|p| p.0.snapshot()).unwrap_or_default())
    }

    /// Sends kOfxActionUnload.
    pub fn unload(&self) -> Result<(), HostError> {
        self.inner
            .run_checked(ofx::kOfxActionUnload, 0, None, None, None)
            .map(|_| ())
    }
}

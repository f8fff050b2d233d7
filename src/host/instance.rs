//! Driving an effect instance: parameter edits, the layout actions, sequences and renders.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use super::app::{Host, HostMessage};
use super::effect::Effect;
use super::ffi::{k, ofx};
use super::handles;
use super::image::{pixel_bounds, BitDepth, Components, RenderTarget, RenderedImage};
use super::params::{Param, ParamKind, ParamValue};
use super::plugin::PluginInner;
use super::props::{Access, PropValue, PropertySet, PropertySnapshot, TempProps, RO, RW, VAR};
use super::threadctx::{self, RenderCtx};
use super::HostError;

/// One render the host asks for.
#[derive(Clone, Debug)]
pub struct RenderRequest {
    pub time: f64,
    pub render_scale: (f64, f64),
    pub depth: BitDepth,
    pub components: Components,
    /// Rows top-down in memory: row bytes < 0, kOfxImagePropData at row y1 (last in memory).
    pub negative_row_bytes: bool,
    /// Extra bytes after each row's pixels. Keep it a multiple of the sample size for Short
    /// and Float images, or rows are misaligned for the plugin.
    pub row_padding: usize,
    /// The whole buffer (pixels, padding, guards) holds this before the render.
    pub fill_byte: u8,
    pub interactive: bool,
    pub sequential: bool,
    pub draft: bool,
    /// Sets kOfxImageEffectPropThumbnailRender in the render in args.
    pub thumbnail: bool,
}

impl RenderRequest {
    /// Scale 1, float RGBA, positive row bytes, no padding, fill 0xAB, not interactive,
    /// not sequential, not draft, not a thumbnail.
    pub fn new(time: f64) -> Self {
        RenderRequest {
            time,
            render_scale: (1.0, 1.0),
            depth: BitDepth::Float,
            components: Components::Rgba,
            negative_row_bytes: false,
            row_padding: 0,
            fill_byte: 0xAB,
            interactive: false,
            sequential: false,
            draft: false,
            thumbnail: false,
        }
    }
}

/// An effect instance. Renders may run on several threads at once through `&self`.
pub struct Instance {
    plugin: Arc<PluginInner>,
    effect: Arc<Effect>,
    context: String,
    destroyed: AtomicBool,
}

fn s(v: &str) -> PropValue {
    PropValue::Str(vec![v.to_string()])
}

fn i(v: i32) -> PropValue {
    PropValue::Int(vec![v])
}

fn d(v: &[f64]) -> PropValue {
    PropValue::Double(v.to_vec())
}

/// Builds action arguments: a strict property set freed when dropped.
fn args(what: &'static str, props: &[(&[u8], PropValue)], flags: super::props::Flags) -> TempProps {
    let p = PropertySet::new(what, Access::Strict);
    for (name, v) in props {
        p.define(k(name), v.clone(), flags);
    }
    TempProps(p)
}

/// The out args an action expects, pre-filled with the host's defaults (None: NULL out args).
pub(crate) fn out_args_for(
    action: &str,
    effect: Option<&Effect>,
    host: &Host,
) -> Option<Arc<PropertySet>> {
    let o = host.options();
    let p = PropertySet::new("out args", Access::Strict);
    let def = |n: &str, v: PropValue| p.define(n, v, RW);
    let clips = effect.map(|e| e.clips()).unwrap_or_default();
    let inputs = clips.iter().filter(|c| !c.is_output());
    let (ex, ey) = o.project_extent();
    if action == k(ofx::kOfxImageEffectActionGetRegionOfDefinition) {
        def(
            k(ofx::kOfxImageEffectPropRegionOfDefinition),
            d(&[0.0, 0.0, ex, ey]),
        );
    } else if action == k(ofx::kOfxImageEffectActionGetClipPreferences) {
        def(k(ofx::kOfxImageEffectPropFrameRate), d(&[o.frame_rate]));
        def(
            k(ofx::kOfxImageEffectPropPreMultiplication),
            s(k(ofx::kOfxImagePreMultiplied)),
        );
        def(k(ofx::kOfxImageClipPropContinuousSamples), i(0));
        def(k(ofx::kOfxImageEffectFrameVarying), i(0));
        def(
            k(ofx::kOfxImageClipPropFieldOrder),
            s(k(ofx::kOfxImageFieldNone)),
        );
        for c in &clips {
            let rgba = s(k(ofx::kOfxImageComponentRGBA));
            def(&format!("OfxImageClipPropComponents_{}", c.name), rgba);
            def(
                &format!("OfxImageClipPropDepth_{}", c.name),
                s(k(ofx::kOfxBitDepthFloat)),
            );
            def(
                &format!("OfxImageClipPropPAR_{}", c.name),
                d(&[o.pixel_aspect_ratio]),
            );
        }
    } else if action == k(ofx::kOfxImageEffectActionGetTimeDomain) {
        def(
            k(ofx::kOfxImageEffectPropFrameRange),
            d(&[o.frame_range.0, o.frame_range.1]),
        );
    } else if action == k(ofx::kOfxImageEffectActionIsIdentity) {
        def(k(ofx::kOfxPropName), s(""));
        def(k(ofx::kOfxPropTime), d(&[0.0]));
    } else if action == k(ofx::kOfxImageEffectActionGetRegionsOfInterest) {
        for c in inputs {
            def(
                &format!("OfxImageClipPropRoI_{}", c.name),
                d(&[0.0, 0.0, ex, ey]),
            );
        }
    } else if action == k(ofx::kOfxImageEffectActionGetFramesNeeded) {
        for c in inputs {
            p.define(
                &format!("OfxImageClipPropFrameRange_{}", c.name),
                d(&[0.0, 0.0]),
                VAR,
            );
        }
    } else {
        p.release();
        return None;
    }
    Some(p)
}

const VALID_COMPONENTS: [&[u8]; 4] = [
    ofx::kOfxImageComponentRGBA,
    ofx::kOfxImageComponentRGB,
    ofx::kOfxImageComponentAlpha,
    ofx::kOfxImageComponentNone,
];
const VALID_DEPTHS: [&[u8]; 5] = [
    ofx::kOfxBitDepthByte,
    ofx::kOfxBitDepthShort,
    ofx::kOfxBitDepthHalf,
    ofx::kOfxBitDepthFloat,
    ofx::kOfxBitDepthNone,
];

impl Instance {
    pub(crate) fn new(plugin: Arc<PluginInner>, effect: Arc<Effect>, context: &str) -> Instance {
        Instance {
            plugin,
            effect,
            context: context.to_string(),
            destroyed: AtomicBool::new(false),
        }
    }

    #[cfg(test)]
    pub(crate) fn effect(&self) -> &Arc<Effect> {
        &self.effect
    }

    /// The OfxImageEffectHandle.
    pub fn handle(&self) -> *const std::ffi::c_void {
        self.effect.handle as *const std::ffi::c_void
    }

    pub fn context(&self) -> &str {
        &self.context
    }

    pub fn host(&self) -> &Arc<Host> {
        &self.plugin.host
    }

    /// The instance's property set.
    pub fn props(&self) -> PropertySnapshot {
        self.effect.props.snapshot()
    }

    /// A clip instance's property set.
    pub fn clip_props(&self, clip: &str) -> Result<PropertySnapshot, HostError> {
        self.effect
            .clip(clip)
            .map(|c| c.props.snapshot())
            .ok_or_else(|| HostError::host(format!("no clip {clip:?}")))
    }

    /// The message the plugin set with setPersistentMessage, if not cleared.
    pub fn persistent_message(&self) -> Option<HostMessage> {
        self.effect.persistent.lock().clone()
    }

    fn param(&self, name: &str) -> Result<Arc<Param>, HostError> {
        self.effect
            .params
            .find(name)
            .ok_or_else(|| HostError::host(format!("no parameter {name:?}")))
    }

    /// A parameter's value at `time`.
    pub fn param_value(&self, name: &str, time: f64) -> Result<ParamValue, HostError> {
        let p = self.param(name)?;
        p.value_at(time)
            .ok_or_else(|| HostError::host(format!("{name} ({}) has no value", p.kind.type_name())))
    }

    /// The instance parameter's property set.
    pub fn param_props(&self, name: &str) -> Result<PropertySnapshot, HostError> {
        Ok(self.param(name)?.props.snapshot())
    }

    /// A user edit of the (non-animated) value, then the instance-changed actions.
    pub fn set_param(&self, name: &str, value: ParamValue) -> Result<(), HostError> {
        let p = self.param(name)?;
        if p.num_keys() > 0 {
            return Err(HostError::host(format!(
                "{name} has keyframes; use set_key"
            )));
        }
        p.validate(&value).map_err(HostError::host)?;
        p.store(None, value)
            .map_err(|st| HostError::status(st, format!("setting {name}")))?;
        self.changed(name, self.plugin.host.time())
    }

    /// Adds or replaces a keyframe of an animating parameter, then the instance-changed actions.
    pub fn set_key(&self, name: &str, time: f64, value: ParamValue) -> Result<(), HostError> {
        let p = self.param(name)?;
        if !p.animates() {
            return Err(HostError::host(format!(
                "{name} does not animate (kOfxParamPropAnimates is 0)"
            )));
        }
        p.validate(&value).map_err(HostError::host)?;
        p.store(Some(time), value)
            .map_err(|st| HostError::status(st, format!("keying {name}")))?;
        self.changed(name, time)
    }

    /// The user pressed a push button.
    pub fn press_button(&self, name: &str) -> Result<(), HostError> {
        let p = self.param(name)?;
        if p.kind != ParamKind::PushButton {
            return Err(HostError::host(format!(
                "{name} is a {}, not a push button",
                p.kind.type_name()
            )));
        }
        self.changed(name, self.plugin.host.time())
    }

    /// BeginInstanceChanged, InstanceChanged (a user edit of `name`), EndInstanceChanged.
    fn changed(&self, name: &str, time: f64) -> Result<(), HostError> {
        let reason = s(k(ofx::kOfxChangeUserEdited));
        let edge = args(
            "instance changed in args",
            &[(ofx::kOfxPropChangeReason, reason.clone())],
            RO,
        );
        let change = args(
            "instance changed in args",
            &[
                (ofx::kOfxPropType, s(k(ofx::kOfxTypeParameter))),
                (ofx::kOfxPropName, s(name)),
                (ofx::kOfxPropChangeReason, reason),
                (ofx::kOfxPropTime, d(&[time])),
                (ofx::kOfxImageEffectPropRenderScale, d(&[1.0, 1.0])),
            ],
            RO,
        );
        let h = self.effect.handle;
        let p = &self.plugin;
        p.run_checked(
            ofx::kOfxActionBeginInstanceChanged,
            h,
            Some(&edge.0),
            None,
            None,
        )?;
        p.run_checked(
            ofx::kOfxActionInstanceChanged,
            h,
            Some(&change.0),
            None,
            Some(time),
        )?;
        p.run_checked(
            ofx::kOfxActionEndInstanceChanged,
            h,
            Some(&edge.0),
            None,
            None,
        )?;
        Ok(())
    }

    /// kOfxImageEffectActionGetClipPreferences, out args pre-filled with the host's
    /// defaults; the answer is checked and applied to the clips.
    pub fn clip_preferences(&self) -> Result<PropertySnapshot, HostError> {
        let action = k(ofx::kOfxImageEffectActionGetClipPreferences);
        let out = TempProps(
            out_args_for(action, Some(&self.effect), &self.plugin.host).expect("has out args"),
        );
        self.plugin.run_checked(
            ofx::kOfxImageEffectActionGetClipPreferences,
            self.effect.handle,
            None,
            Some(&out.0),
            None,
        )?;
        let prefs = out.0.snapshot();
        let str_of = |name: &str| prefs.get(name).and_then(|v| v.as_str()).map(str::to_string);
        for c in self.effect.clips() {
            let comps =
                str_of(&format!("OfxImageClipPropComponents_{}", c.name)).unwrap_or_default();
            let depth = str_of(&format!("OfxImageClipPropDepth_{}", c.name)).unwrap_or_default();
            if !VALID_COMPONENTS.iter().any(|v| k(v) == comps) {
                return Err(HostError::host(format!(
                    "{action}: clip {} asks for components {comps:?}",
                    c.name
                )));
            }
            if !VALID_DEPTHS.iter().any(|v| k(v) == depth) {
                return Err(HostError::host(format!(
                    "{action}: clip {} asks for depth {depth:?}",
                    c.name
                )));
            }
            c.props
                .host_set(k(ofx::kOfxImageEffectPropComponents), s(&comps));
            c.props
                .host_set(k(ofx::kOfxImageEffectPropPixelDepth), s(&depth));
            if let Some(par) = prefs.get(&format!("OfxImageClipPropPAR_{}", c.name)) {
                c.props
                    .host_set(k(ofx::kOfxImagePropPixelAspectRatio), par.clone());
            }
            if c.is_output() {
                let applied: [&[u8]; 4] = [
                    ofx::kOfxImageEffectPropPreMultiplication,
                    ofx::kOfxImageEffectPropFrameRate,
                    ofx::kOfxImageClipPropFieldOrder,
                    ofx::kOfxImageClipPropContinuousSamples,
                ];
                for name in applied {
                    if let Some(v) = prefs.get(k(name)) {
                        c.props.host_set(k(name), v.clone());
                    }
                }
            }
        }
        Ok(prefs)
    }

    /// kOfxImageEffectActionGetRegionOfDefinition; the default (project extent) on ReplyDefault.
    pub fn region_of_definition(
        &self,
        time: f64,
        render_scale: (f64, f64),
    ) -> Result<ofx::OfxRectD, HostError> {
        let action = k(ofx::kOfxImageEffectActionGetRegionOfDefinition);
        let in_args = args(
            "region of definition in args",
            &[
                (ofx::kOfxPropTime, d(&[time])),
                (
                    ofx::kOfxImageEffectPropRenderScale,
                    d(&[render_scale.0, render_scale.1]),
                ),
            ],
            RO,
        );
        let out = TempProps(
            out_args_for(action, Some(&self.effect), &self.plugin.host).expect("has out args"),
        );
        let st = self.plugin.run_checked(
            ofx::kOfxImageEffectActionGetRegionOfDefinition,
            self.effect.handle,
            Some(&in_args.0),
            Some(&out.0),
            Some(time),
        )?;
        if st == ofx::kOfxStatReplyDefault {
            return Ok(self.effect.default_rod());
        }
        let r = out.0.get(k(ofx::kOfxImageEffectPropRegionOfDefinition));
        match r.as_ref().and_then(|v| v.doubles()) {
            Some(&[x1, y1, x2, y2]) if [x1, y1, x2, y2].iter().all(|v| v.is_finite()) => {
                Ok(ofx::OfxRectD { x1, y1, x2, y2 })
            }
            _ => Err(HostError::host(format!(
                "{action} at t={time} answered an unusable rectangle {r:?}"
            ))),
        }
    }

    /// kOfxImageEffectActionGetTimeDomain (real hosts send it only in the General context);
    /// `None` on ReplyDefault.
    pub fn time_domain(&self) -> Result<Option<(f64, f64)>, HostError> {
        let action = k(ofx::kOfxImageEffectActionGetTimeDomain);
        let out = TempProps(
            out_args_for(action, Some(&self.effect), &self.plugin.host).expect("has out args"),
        );
        let st = self.plugin.run_checked(
            ofx::kOfxImageEffectActionGetTimeDomain,
            self.effect.handle,
            None,
            Some(&out.0),
            None,
        )?;
        if st == ofx::kOfxStatReplyDefault {
            return Ok(None);
        }
        let r = out.0.get(k(ofx::kOfxImageEffectPropFrameRange));
        match r.as_ref().and_then(|v| v.doubles()) {
            Some(&[a, b]) => Ok(Some((a, b))),
            _ => Err(HostError::host(format!("{action} answered {r:?}"))),
        }
    }

    /// kOfxImageEffectActionIsIdentity at scale 1 over the project; `Some((clip, time))`
    /// when the plugin says it is an identity, `None` on ReplyDefault.
    pub fn is_identity(&self, time: f64) -> Result<Option<(String, f64)>, HostError> {
        let action = k(ofx::kOfxImageEffectActionIsIdentity);
        let window = pixel_bounds(
            self.effect.default_rod(),
            (1.0, 1.0),
            self.plugin.host.options().pixel_aspect_ratio,
        )?;
        let in_args = args(
            "is identity in args",
            &[
                (ofx::kOfxPropTime, d(&[time])),
                (
                    ofx::kOfxImageEffectPropFieldToRender,
                    s(k(ofx::kOfxImageFieldNone)),
                ),
                (
                    ofx::kOfxImageEffectPropRenderWindow,
                    PropValue::Int(vec![window.x1, window.y1, window.x2, window.y2]),
                ),
                (ofx::kOfxImageEffectPropRenderScale, d(&[1.0, 1.0])),
            ],
            RO,
        );
        let out = TempProps(
            out_args_for(action, Some(&self.effect), &self.plugin.host).expect("has out args"),
        );
        out.0.host_set(k(ofx::kOfxPropTime), d(&[time]));
        let st = self.plugin.run_checked(
            ofx::kOfxImageEffectActionIsIdentity,
            self.effect.handle,
            Some(&in_args.0),
            Some(&out.0),
            Some(time),
        )?;
        if st == ofx::kOfxStatReplyDefault {
            return Ok(None);
        }
        let name = out.0.str(k(ofx::kOfxPropName), 0).unwrap_or_default();
        let t = out.0.double(k(ofx::kOfxPropTime), 0).unwrap_or(time);
        Ok(Some((name, t)))
    }

    fn sequence(
        &self,
        action: &'static [u8],
        range: (f64, f64),
        interactive: bool,
        render_scale: (f64, f64),
    ) -> Result<(), HostError> {
        let in_args = args(
            "sequence render in args",
            &[
                (ofx::kOfxImageEffectPropFrameRange, d(&[range.0, range.1])),
                (ofx::kOfxImageEffectPropFrameStep, d(&[1.0])),
                (ofx::kOfxPropIsInteractive, i(interactive as i32)),
                (
                    ofx::kOfxImageEffectPropRenderScale,
                    d(&[render_scale.0, render_scale.1]),
                ),
                (ofx::kOfxImageEffectPropSequentialRenderStatus, i(0)),
                (
                    ofx::kOfxImageEffectPropInteractiveRenderStatus,
                    i(interactive as i32),
                ),
                (ofx::kOfxImageEffectPropRenderQualityDraft, i(0)),
            ],
            RO,
        );
        self.plugin
            .run_checked(action, self.effect.handle, Some(&in_args.0), None, None)
            .map(|_| ())
    }

    pub fn begin_sequence(
        &self,
        range: (f64, f64),
        interactive: bool,
        render_scale: (f64, f64),
    ) -> Result<(), HostError> {
        self.sequence(
            ofx::kOfxImageEffectActionBeginSequenceRender,
            range,
            interactive,
            render_scale,
        )
    }

    pub fn end_sequence(
        &self,
        range: (f64, f64),
        interactive: bool,
        render_scale: (f64, f64),
    ) -> Result<(), HostError> {
        self.sequence(
            ofx::kOfxImageEffectActionEndSequenceRender,
            range,
            interactive,
            render_scale,
        )
    }

    /// Renders one frame: asks for the region of definition, allocates the guarded target,
    /// sends kOfxImageEffectActionRender with the whole image as the render window, and
    /// copies the pixels out. The Output clip's depth and components are set to the
    /// request's first (concurrent renders should agree on them).
    pub fn render(&self, request: &RenderRequest) -> Result<RenderedImage, HostError> {
        let host = &self.plugin.host;
        let rod = self.region_of_definition(request.time, request.render_scale)?;
        let bounds = pixel_bounds(rod, request.render_scale, host.options().pixel_aspect_ratio)?;
        let target = Arc::new(RenderTarget::new(
            bounds,
            request.depth,
            request.components,
            request.negative_row_bytes,
            request.row_padding,
            request.fill_byte,
            request.time,
            request.render_scale,
        )?);
        if let Some(out) = self.effect.clip(k(ofx::kOfxImageEffectOutputClipName)) {
            out.props.host_set(
                k(ofx::kOfxImageEffectPropPixelDepth),
                s(request.depth.ofx_name()),
            );
            out.props.host_set(
                k(ofx::kOfxImageEffectPropComponents),
                s(request.components.ofx_name()),
            );
        }
        let mut in_props: Vec<(&[u8], PropValue)> = vec![
            (ofx::kOfxPropTime, d(&[request.time])),
            (
                ofx::kOfxImageEffectPropFieldToRender,
                s(k(ofx::kOfxImageFieldNone)),
            ),
            (
                ofx::kOfxImageEffectPropRenderWindow,
                PropValue::Int(vec![bounds.x1, bounds.y1, bounds.x2, bounds.y2]),
            ),
            (
                ofx::kOfxImageEffectPropRenderScale,
                d(&[request.render_scale.0, request.render_scale.1]),
            ),
            (
                ofx::kOfxImageEffectPropSequentialRenderStatus,
                i(request.sequential as i32),
            ),
            (
                ofx::kOfxImageEffectPropInteractiveRenderStatus,
                i(request.interactive as i32),
            ),
            (
                ofx::kOfxImageEffectPropRenderQualityDraft,
                i(request.draft as i32),
            ),
        ];
        if request.thumbnail {
            // An enum in the specification (1.5.1): "true" / "false".
            in_props.push((ofx::kOfxImageEffectPropThumbnailRender, s("true")));
        }
        let in_args = args("render in args", &in_props, RO);

        self.effect.renders.lock().push(target.clone());
        let status = {
            let _render = threadctx::push_render(RenderCtx {
                effect: self.effect.handle,
                target: target.clone(),
            });
            let since = host.message_count();
            let st = self.plugin.run(
                ofx::kOfxImageEffectActionRender,
                self.effect.handle,
                Some(&in_args.0),
                None,
            );
            (st, since)
        };
        self.effect
            .renders
            .lock()
            .retain(|t| !Arc::ptr_eq(t, &target));
        let image = target.to_rendered();
        // Images the plugin did not release die with the render.
        for h in target.images.lock().drain(..) {
            handles::remove(h);
        }
        let (st, since) = status;
        // A host that asked for an abort during the render discards the frame, whatever the
        // plugin answered (the specification names no status for an aborted render).
        if host
            .options()
            .abort_after
            .is_some_and(|limit| target.started.elapsed() >= limit)
        {
            return Err(HostError::host(format!(
                "the render at t={} was aborted by the host; the frame is discarded",
                request.time
            )));
        }
        if st != ofx::kOfxStatOK {
            let posted = host.messages_since(since, self.effect.handle);
            return Err(HostError::action(
                k(ofx::kOfxImageEffectActionRender),
                Some(request.time),
                st,
                &posted,
            ));
        }
        Ok(image)
    }

    pub fn purge_caches(&self) -> Result<(), HostError> {
        self.plugin
            .run_checked(
                ofx::kOfxActionPurgeCaches,
                self.effect.handle,
                None,
                None,
                None,
            )
            .map(|_| ())
    }

    pub fn sync_private_data(&self) -> Result<(), HostError> {
        self.plugin
            .run_checked(
                ofx::kOfxActionSyncPrivateData,
                self.effect.handle,
                None,
                None,
                None,
            )
            .map(|_| ())
    }

    /// kOfxActionDestroyInstance, then the host frees the instance's handles.
    pub fn destroy(self) -> Result<(), HostError> {
        self.destroy_once()
    }

    fn destroy_once(&self) -> Result<(), HostError> {
        if self.destroyed.swap(true, Ordering::SeqCst) {
            return Ok(());
        }
        let r = self.plugin.run_checked(
            ofx::kOfxActionDestroyInstance,
            self.effect.handle,
            None,
            None,
            None,
        );
        self.effect.release();
        r.map(|_| ())
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        let _ = self.destroy_once();
    }
}

//! Keyframes of one parameter and how values are read between them.
//!
//! Numbers interpolate linearly between keys (integers are rounded) and hold outside them;
//! booleans, choices and strings step (a key holds until the next one). Derivatives and
//! integrals are exact for that piecewise-linear curve.

use super::params::ParamValue;

/// Two key times closer than this are the same key.
const SAME_TIME: f64 = 1e-9;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Interp {
    Linear,
    LinearRounded,
    Step,
}

/// Keys sorted by time, at most one per time.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct Curve {
    keys: Vec<(f64, ParamValue)>,
}

impl Curve {
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    pub fn clear(&mut self) {
        self.keys.clear();
    }

    fn position(&self, t: f64) -> Result<usize, usize> {
        let i = self.keys.partition_point(|(kt, _)| *kt < t - SAME_TIME);
        match self.keys.get(i) {
            Some((kt, _)) if (kt - t).abs() <= SAME_TIME => Ok(i),
            _ => Err(i),
        }
    }

    /// Adds a key, or replaces the one at that time.
    pub fn set_key(&mut self, t: f64, v: ParamValue) {
        match self.position(t) {
            Ok(i) => self.keys[i].1 = v,
            Err(i) => self.keys.insert(i, (t, v)),
        }
    }

    /// Removes the key at `t`; false if there is none.
    pub fn delete_key(&mut self, t: f64) -> bool {
        match self.position(t) {
            Ok(i) => {
                self.keys.remove(i);
                true
            }
            Err(_) => false,
        }
    }

    pub fn key_time(&self, nth: usize) -> Option<f64> {
        self.keys.get(nth).map(|(t, _)| *t)
    }

    /// The key at `t` (direction 0), the last before it (-1) or the first after it (1).
    pub fn key_index(&self, t: f64, direction: i32) -> Option<usize> {
        match (direction.signum(), self.position(t)) {
            (0, Ok(i)) => Some(i),
            (0, Err(_)) => None,
            (d, p) if d < 0 => {
                let i = match p {
                    Ok(i) | Err(i) => i,
                };
                i.checked_sub(1)
            }
            (_, Ok(i)) => (i + 1 < self.keys.len()).then_some(i + 1),
            (_, Err(i)) => (i < self.keys.len()).then_some(i),
        }
    }

    /// The segment around `t`: (index of the key at or before, that key, the next key).
    fn segment(&self, t: f64) -> Option<(usize, usize)> {
        let i = self.keys.partition_point(|(kt, _)| *kt <= t);
        if i == 0 || i >= self.keys.len() {
            None
        } else {
            Some((i - 1, i))
        }
    }

    /// The value at `t`; `None` when there are no keys.
    pub fn value_at(&self, t: f64, interp: Interp) -> Option<ParamValue> {
        let (first, last) = (self.keys.first()?, self.keys.last()?);
        if t <= first.0 {
            return Some(first.1.clone());
        }
        if t >= last.0 {
            return Some(last.1.clone());
        }
        let (a, b) = self.segment(t)?;
        let ((ta, va), (tb, vb)) = (&self.keys[a], &self.keys[b]);
        if interp == Interp::Step {
            return Some(va.clone());
        }
        let (ca, cb) = (va.components()?, vb.components()?);
        let f = (t - ta) / (tb - ta);
        let mixed: Vec<f64> = ca.iter().zip(&cb).map(|(x, y)| x + (y - x) * f).collect();
        Some(va.with_components(&mixed))
    }

    /// The slope at `t`, per component: that of the segment [k_i, k_i+1) holding `t`, and 0
    /// before the first key and from the last key on. `None` without keys.
    pub fn derivative(&self, t: f64) -> Option<Vec<f64>> {
        let dims = self.keys.first()?.1.components()?.len();
        let Some((a, b)) = self.segment(t) else {
            return Some(vec![0.0; dims]);
        };
        let ((ta, va), (tb, vb)) = (&self.keys[a], &self.keys[b]);
        let (ca, cb) = (va.components()?, vb.components()?);
        Some(
            ca.iter()
                .zip(&cb)
                .map(|(x, y)| (y - x) / (tb - ta))
                .collect(),
        )
    }

    /// The integral from `t1` to `t2` (negative when `t2 < t1`); `None` without keys.
    pub fn integral(&self, t1: f64, t2: f64) -> Option<Vec<f64>> {
        let dims = self.keys.first()?.1.components()?.len();
        let (lo, hi, sign) = if t2 >= t1 {
            (t1, t2, 1.0)
        } else {
            (t2, t1, -1.0)
        };
        // Between consecutive breakpoints the curve is linear, so trapezoids are exact.
        let mut points = vec![lo];
        points.extend(
            self.keys
                .iter()
                .map(|(t, _)| *t)
                .filter(|t| *t > lo && *t < hi),
        );
        points.push(hi);
        let mut sum = vec![0.0; dims];
        for w in points.windows(2) {
            let va = self.value_at(w[0], Interp::Linear)?.components()?;
            let vb = self.value_at(w[1], Interp::Linear)?.components()?;
            for d in 0..dims {
                sum[d] += (va[d] + vb[d]) * 0.5 * (w[1] - w[0]);
            }
        }
        Some(sum.into_iter().map(|x| x * sign).collect())
    }

    /// Keys (optionally only those within `range`) moved by `offset`.
    pub fn shifted(&self, offset: f64, range: Option<(f64, f64)>) -> Curve {
        let keys = self
            .keys
            .iter()
            .filter(|(t, _)| range.is_none_or(|(a, b)| *t >= a - SAME_TIME && *t <= b + SAME_TIME))
            .map(|(t, v)| (t + offset, v.clone()))
            .collect();
        Curve { keys }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn curve(keys: &[(f64, f64)]) -> Curve {
        let mut c = Curve::default();
        for (t, v) in keys {
            c.set_key(*t, ParamValue::Double(*v));
        }
        c
    }

    fn d(v: Option<ParamValue>) -> f64 {
        match v {
            Some(ParamValue::Double(x)) => x,
            other => panic!("not a double: {other:?}"),
        }
    }

    #[test]
    fn linear_between_and_hold_outside() {
        let c = curve(&[(10.0, 1.0), (0.0, 0.0), (20.0, 0.0)]);
        assert_eq!(c.len(), 3);
        assert_eq!(c.key_time(0), Some(0.0));
        assert_eq!(d(c.value_at(-5.0, Interp::Linear)), 0.0);
        assert_eq!(d(c.value_at(5.0, Interp::Linear)), 0.5);
        assert_eq!(d(c.value_at(10.0, Interp::Linear)), 1.0);
        assert_eq!(d(c.value_at(15.0, Interp::Linear)), 0.5);
        assert_eq!(d(c.value_at(99.0, Interp::Linear)), 0.0);
        assert!(Curve::default().value_at(1.0, Interp::Linear).is_none());
    }

    #[test]
    fn integers_round_and_steps_hold() {
        let mut c = Curve::default();
        c.set_key(0.0, ParamValue::Int(0));
        c.set_key(4.0, ParamValue::Int(3));
        assert_eq!(
            c.value_at(1.0, Interp::LinearRounded),
            Some(ParamValue::Int(1))
        ); // 0.75
        assert_eq!(
            c.value_at(2.0, Interp::LinearRounded),
            Some(ParamValue::Int(2))
        ); // 1.5
        let mut s = Curve::default();
        s.set_key(0.0, ParamValue::Str("a".into()));
        s.set_key(10.0, ParamValue::Str("b".into()));
        assert_eq!(
            s.value_at(9.99, Interp::Step),
            Some(ParamValue::Str("a".into()))
        );
        assert_eq!(
            s.value_at(10.0, Interp::Step),
            Some(ParamValue::Str("b".into()))
        );
        let mut b = Curve::default();
        b.set_key(0.0, ParamValue::Bool(false));
        b.set_key(2.0, ParamValue::Bool(true));
        assert_eq!(b.value_at(1.0, Interp::Step), Some(ParamValue::Bool(false)));
    }

    #[test]
    fn vectors_interpolate_per_component() {
        let mut c = Curve::default();
        c.set_key(0.0, ParamValue::Rgba([0.0, 0.0, 0.0, 1.0]));
        c.set_key(2.0, ParamValue::Rgba([1.0, 0.5, 0.0, 1.0]));
        assert_eq!(
            c.value_at(1.0, Interp::Linear),
            Some(ParamValue::Rgba([0.5, 0.25, 0.0, 1.0]))
        );
        let mut i = Curve::default();
        i.set_key(0.0, ParamValue::Int2([0, 10]));
        i.set_key(10.0, ParamValue::Int2([10, 0]));
        assert_eq!(
            i.value_at(3.0, Interp::LinearRounded),
            Some(ParamValue::Int2([3, 7]))
        );
    }

    #[test]
    fn replace_and_delete_keys() {
        let mut c = curve(&[(1.0, 1.0), (2.0, 2.0)]);
        c.set_key(1.0 + 1e-12, ParamValue::Double(5.0));
        assert_eq!(c.len(), 2);
        assert_eq!(d(c.value_at(1.0, Interp::Linear)), 5.0);
        assert!(c.delete_key(2.0));
        assert!(!c.delete_key(2.0));
        assert_eq!(c.len(), 1);
    }

    #[test]
    fn key_index_directions() {
        let c = curve(&[(0.0, 0.0), (10.0, 1.0), (20.0, 2.0)]);
        assert_eq!(c.key_index(10.0, 0), Some(1));
        assert_eq!(c.key_index(5.0, 0), None);
        assert_eq!(c.key_index(10.0, -1), Some(0));
        assert_eq!(c.key_index(10.0, 1), Some(2));
        assert_eq!(c.key_index(5.0, -1), Some(0));
        assert_eq!(c.key_index(5.0, 1), Some(1));
        assert_eq!(c.key_index(0.0, -1), None);
        assert_eq!(c.key_index(20.0, 1), None);
        assert_eq!(c.key_index(25.0, -1), Some(2));
        assert_eq!(c.key_index(-5.0, 1), Some(0));
    }

    #[test]
    fn derivative_is_the_segment_slope() {
        let c = curve(&[(0.0, 0.0), (10.0, 5.0), (20.0, 5.0)]);
        assert_eq!(c.derivative(-1.0), Some(vec![0.0]));
        assert_eq!(c.derivative(0.0), Some(vec![0.5]));
        assert_eq!(c.derivative(5.0), Some(vec![0.5]));
        assert_eq!(c.derivative(10.0), Some(vec![0.0]));
        assert_eq!(c.derivative(20.0), Some(vec![0.0]));
    }

    #[test]
    fn integral_is_exact() {
        let c = curve(&[(0.0, 0.0), (10.0, 10.0)]);
        // Triangle 0..10 = 50, then constant 10 for 5 more frames.
        assert_eq!(c.integral(0.0, 10.0), Some(vec![50.0]));
        assert_eq!(c.integral(0.0, 15.0), Some(vec![100.0]));
        assert_eq!(c.integral(15.0, 0.0), Some(vec![-100.0]));
        assert_eq!(c.integral(-5.0, 0.0), Some(vec![0.0]));
        assert_eq!(c.integral(2.0, 4.0), Some(vec![6.0]));
    }

    #[test]
    fn shifted_copies() {
        let c = curve(&[(0.0, 0.0), (10.0, 1.0), (20.0, 2.0)]);
        let s = c.shifted(5.0, Some((5.0, 20.0)));
        assert_eq!(s.len(), 2);
        assert_eq!(s.key_time(0), Some(15.0));
        assert_eq!(s.key_time(1), Some(25.0));
        assert_eq!(c.shifted(0.0, None), c);
    }
}

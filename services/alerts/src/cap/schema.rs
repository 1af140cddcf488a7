//! The element sequences of the CAP 1.2 schema (OASIS CAP-V1.2, `CAP-v1.2.xsd`): for each
//! complex element, its children in order with their occurrence bounds.

/// How often a child element may occur.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Occurs {
    /// Exactly once.
    One,
    /// Zero or one time.
    Optional,
    /// One or more times.
    OneOrMore,
    /// Any number of times.
    Any,
}

impl Occurs {
    pub(crate) fn min(self) -> usize {
        matches!(self, Occurs::One | Occurs::OneOrMore) as usize
    }

    pub(crate) fn repeats(self) -> bool {
        matches!(self, Occurs::OneOrMore | Occurs::Any)
    }
}

use Occurs::*;

pub(crate) type Sequence = &'static [(&'static str, Occurs)];

pub(crate) const ALERT: Sequence = &[
    ("identifier", One),
    ("sender", One),
    ("sent", One),
    ("status", One),
    ("msgType", One),
    ("source", Optional),
    ("scope", One),
    ("restriction", Optional),
    ("addresses", Optional),
    ("code", Any),
    ("note", Optional),
    ("references", Optional),
    ("incidents", Optional),
    ("info", Any),
];

pub(crate) const INFO: Sequence = &[
    ("language", Optional),
    ("category", OneOrMore),
    ("event", One),
    ("responseType", Any),
    ("urgency", One),
    ("severity", One),
    ("certainty", One),
    ("audience", Optional),
    ("eventCode", Any),
    ("effective", Optional),
    ("onset", Optional),
    ("expires", Optional),
    ("senderName", Optional),
    ("headline", Optional),
    ("description", Optional),
    ("instruction", Optional),
    ("web", Optional),
    ("contact", Optional),
    ("parameter", Any),
    ("resource", Any),
    ("area", Any),
];

pub(crate) const NAMED_VALUE: Sequence = &[("valueName", One), ("value", One)];

pub(crate) const RESOURCE: Sequence = &[
    ("resourceDesc", One),
    ("mimeType", One),
    ("size", Optional),
    ("uri", Optional),
    ("derefUri", Optional),
    ("digest", Optional),
];

pub(crate) const AREA: Sequence = &[
    ("areaDesc", One),
    ("polygon", Any),
    ("circle", Any),
    ("geocode", Any),
    ("altitude", Optional),
    ("ceiling", Optional),
];

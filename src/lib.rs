//! amcctl: administration of Amazon Marketing Cloud (AMC) instances.

pub mod model;

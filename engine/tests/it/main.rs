//! Integration and property tests for spot-engine (one test binary per crate).

mod consolidate;
mod decide;
mod pack;
mod plan;
mod whatif;

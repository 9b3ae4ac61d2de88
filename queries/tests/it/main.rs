//! Integration tests of the question planner and the query router.

mod eval;
mod fuzz;
mod tenants;

//! The store as a whole: copies between the backends, and the store under
//! stress (processes killed mid-write and many processes at once).

mod copy;
mod rls;
mod slow;
mod team_store;

//! The store under stress: processes killed mid-write and many processes
//! at once.

mod slow;

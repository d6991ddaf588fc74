//! Unit tests of the kit: the pieces (messages, host, targets, corpus), the suite against a
//! driver that conforms, and proof that each check fails for the fault it is there to catch.

mod conformance;
mod faulty;
mod parts;
mod raw;

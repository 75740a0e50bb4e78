//! A small HTTP/1.1 server on std threads: XAPI's import answers 200 before
//! reading the body and closes the connection, which is easiest by hand.

pub mod conn;
pub mod request;
pub mod response;
mod server;

pub use server::{start, Server};

//! Exit codes, and the error that carries one to `main`.

use crate::verdict::Verdict;

pub const PASS: u8 = 0;
pub const FAIL: u8 = 1;
/// Bad usage or bad input (flag, URL, profile, kubeconfig).
pub const USAGE: u8 = 2;
/// baton could not measure faithfully.
pub const INVALID: u8 = 3;
/// Interrupted by Ctrl-C (SIGINT): 128 + 2, as a shell reports it.
pub const INTERRUPTED: u8 = 130;
/// Terminated by SIGTERM (a CI cancel): 128 + 15.
pub const TERMINATED: u8 = 143;

/// An error that ends a command with a specific exit code. Anything else
/// reaching `main` is treated as [`INVALID`].
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct Exit {
    pub code: u8,
    pub message: String,
}

impl Exit {
    pub fn usage(message: impl std::fmt::Display) -> Exit {
        Exit {
            code: USAGE,
            message: message.to_string(),
        }
    }
}

pub fn for_verdict(v: Verdict, interrupted: bool) -> u8 {
    match v {
        _ if interrupted => crate::interrupt::exit_code(),
        Verdict::Interrupted => crate::interrupt::exit_code(),
        Verdict::Pass => PASS,
        Verdict::Fail => FAIL,
        Verdict::Invalid => INVALID,
    }
}

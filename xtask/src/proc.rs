//! Child processes for the demo and benchmarks: the emulator (killed on drop)
//! and measured runs (wall time, CPU time, peak RSS of that child alone).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

/// `atsprov emulator` on an ephemeral loopback port.
pub(crate) struct Emulator {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    pub(crate) base: String,
}

/// The counters of `GET /_emulator/stats` the benchmarks read.
pub(crate) struct Stats {
    pub(crate) requests: u64,
    pub(crate) tokens: u64,
    pub(crate) lists: u64,
    pub(crate) rate_limited: u64,
}

impl Emulator {
    pub(crate) fn start(bin: &Path, flags: &[&str]) -> Result<Emulator> {
        let mut child = Command::new(bin)
            .args(["emulator", "--listen", "127.0.0.1:0"])
            .args(flags)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| format!("could not start `{} emulator`", bin.display()))?;
        let stdout = child.stdout.take().context("emulator stdout")?;
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line)?;
        let Some(addr) = line.trim().strip_prefix("listening on ") else {
            let _ = child.kill();
            bail!("the emulator did not start: {line:?}");
        };
        Ok(Emulator {
            base: addr.to_owned(),
            child,
        })
    }

    pub(crate) fn flow_url(&self) -> String {
        format!("{}/data/foundation/flowservice", self.base)
    }

    pub(crate) fn token_url(&self) -> String {
        format!("{}/ims/token/v3", self.base)
    }

    pub(crate) fn stats(&self) -> Result<Stats> {
        let addr = self.base.trim_start_matches("http://");
        let mut stream = TcpStream::connect(addr)?;
        write!(
            stream,
            "GET /_emulator/stats HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
        )?;
        let mut text = String::new();
        stream.read_to_string(&mut text)?;
        let number = |key: &str| -> u64 {
            let needle = format!("\"{key}\":");
            text.find(&needle)
                .map(|at| &text[at + needle.len()..])
                .and_then(|rest| rest.split(|c: char| !c.is_ascii_digit()).next())
                .and_then(|n| n.parse().ok())
                .unwrap_or(0)
        };
        Ok(Stats {
            requests: number("requests"),
            tokens: number("tokens_issued"),
            lists: number("list"),
            rate_limited: number("rate_limited"),
        })
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What one measured child used.
pub(crate) struct Measured {
    pub(crate) code: i32,
    pub(crate) wall: Duration,
    pub(crate) user: Duration,
    pub(crate) system: Duration,
    max_rss_kb: i64,
}

impl Measured {
    pub(crate) fn max_rss_mb(&self) -> f64 {
        self.max_rss_kb as f64 / 1024.0
    }

    pub(crate) fn max_rss_bytes(&self) -> u64 {
        u64::try_from(self.max_rss_kb).unwrap_or(0) * 1024
    }
}

/// Runs a command to the end and reads its own resource usage with wait4(2).
pub(crate) fn measure(cmd: &mut Command) -> Result<Measured> {
    let started = Instant::now();
    let child = cmd
        .spawn()
        .context("could not start the measured command")?;
    let pid = libc::pid_t::try_from(child.id()).context("pid fits pid_t")?;
    let mut status: libc::c_int = 0;
    // SAFETY: an all-zero rusage is a valid value; wait4 fills it.
    #[allow(unsafe_code)] // std has no per-child rusage; wait4 is the one call that gives it
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        if libc::wait4(pid, &mut status, 0, &mut usage) < 0 {
            bail!("wait4 failed: {}", std::io::Error::last_os_error());
        }
        usage
    };
    let wall = started.elapsed();
    let tv = |t: libc::timeval| {
        Duration::from_secs(t.tv_sec as u64) + Duration::from_micros(t.tv_usec as u64)
    };
    let code = if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else {
        -1
    };
    Ok(Measured {
        code,
        wall,
        user: tv(usage.ru_utime),
        system: tv(usage.ru_stime),
        max_rss_kb: usage.ru_maxrss,
    })
}

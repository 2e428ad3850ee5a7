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
    /// Peak RSS in MB (10^6 bytes), the unit the goals are written in.
    pub(crate) fn max_rss_mb(&self) -> f64 {
        self.max_rss_bytes() as f64 / 1e6
    }

    pub(crate) fn max_rss_bytes(&self) -> u64 {
        u64::try_from(self.max_rss_kb).unwrap_or(0) * 1024
    }
}

/// Runs `cmd` to the end under a fresh `xtask measure-child` process and
/// returns what `cmd` alone used.
///
/// Why the extra process: a child started with `posix_spawn` (what std uses)
/// shares its parent's memory until it execs, and Linux then counts the
/// parent's peak RSS into the child's `ru_maxrss`. Measured straight from
/// here, every figure would be at least this xtask's own peak (tens of MB
/// after reading a large report). The helper is a new small process, so the
/// figure is `max(helper, cmd)`, which is `cmd`'s own.
///
/// The measured command's stdout is discarded; its stderr is passed through.
pub(crate) fn measure(cmd: &Command) -> Result<Measured> {
    let out = tempfile_path("measure")?;
    let mut helper = Command::new(std::env::current_exe().context("xtask's own path")?);
    helper
        .arg("measure-child")
        .arg(&out)
        .arg(cmd.get_program())
        .args(cmd.get_args())
        .stdout(Stdio::null());
    if let Some(dir) = cmd.get_current_dir() {
        helper.current_dir(dir);
    }
    for (key, value) in cmd.get_envs() {
        match value {
            Some(value) => helper.env(key, value),
            None => helper.env_remove(key),
        };
    }
    let status = helper
        .status()
        .context("could not start `xtask measure-child`")?;
    let text = std::fs::read_to_string(&out);
    let _ = std::fs::remove_file(&out);
    if !status.success() {
        bail!("`xtask measure-child` failed ({status})");
    }
    Measured::parse(&text.context("the measurement file")?)
}

/// A path for a file this process writes once and removes.
fn tempfile_path(stem: &str) -> Result<std::path::PathBuf> {
    let dir = crate::target_dir().join("bench");
    std::fs::create_dir_all(&dir)?;
    Ok(dir.join(format!("{stem}-{}.txt", std::process::id())))
}

/// `xtask measure-child OUT PROGRAM ARGS…`: runs PROGRAM (stdio inherited),
/// waits for it with wait4(2) and writes its figures to OUT as one line.
pub(crate) fn measure_child(args: &[String]) -> Result<()> {
    let [out, program, rest @ ..] = args else {
        bail!("usage: xtask measure-child OUT PROGRAM [ARGS…]");
    };
    let started = Instant::now();
    let child = Command::new(program)
        .args(rest)
        .spawn()
        .with_context(|| format!("could not start `{program}`"))?;
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
    let micros = |t: libc::timeval| t.tv_sec * 1_000_000 + t.tv_usec;
    let code = if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else {
        -1
    };
    std::fs::write(
        out,
        format!(
            "{code} {} {} {} {}\n",
            wall.as_micros(),
            micros(usage.ru_utime),
            micros(usage.ru_stime),
            usage.ru_maxrss
        ),
    )?;
    Ok(())
}

impl Measured {
    /// The line `measure_child` writes: code, wall, user and system µs, peak RSS KiB.
    fn parse(text: &str) -> Result<Measured> {
        let numbers: Vec<i64> = text
            .split_whitespace()
            .map(str::parse)
            .collect::<Result<_, _>>()
            .with_context(|| format!("a measurement line: {text:?}"))?;
        let [code, wall, user, system, max_rss_kb] = numbers[..] else {
            bail!("a measurement line has five numbers: {text:?}");
        };
        let micros = |n: i64| Duration::from_micros(u64::try_from(n).unwrap_or(0));
        Ok(Measured {
            code: i32::try_from(code).unwrap_or(-1),
            wall: micros(wall),
            user: micros(user),
            system: micros(system),
            max_rss_kb,
        })
    }
}

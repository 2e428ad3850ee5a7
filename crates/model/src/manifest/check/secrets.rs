//! Secret references (`{ env = … }`, `{ file = … }`, literals) and reading secret files.

use std::path::PathBuf;

use figment::value::Value;

use super::values::ValueKind;
use super::{Checker, Origin, value_at};
use crate::diagnostic::Diagnostic;
use crate::manifest::bounded::{self, MAX_SECRET_BYTES, ReadError};
use crate::manifest::source;
use crate::secret::{Secret, SecretRef};

const SECRET_KEYS: [&str; 2] = ["env", "file"];

impl Checker<'_> {
    /// A secret reference, resolved. Literal secrets in the file get a warning.
    pub(super) fn secret(&mut self, path: &str, value: &Value) -> Option<Secret> {
        let reference = match value {
            Value::String(_, s) if self.kind_of(path, value) == ValueKind::String => {
                SecretRef::Literal(Secret::new(s.clone()))
            }
            Value::Dict(_, dict) => {
                self.table(path, value, &SECRET_KEYS)?;
                let env = dict.get("env");
                let file = dict.get("file");
                match (env, file) {
                    (Some(v), None) => {
                        let name = self.string(&source::join(path, "env"), v)?;
                        if name.is_empty() || name.contains(['=', '\0']) {
                            self.error(
                                &source::join(path, "env"),
                                v,
                                "expected an environment variable name",
                            );
                            return None;
                        }
                        SecretRef::Env(name.to_owned())
                    }
                    (None, Some(v)) => {
                        let name = self.string(&source::join(path, "file"), v)?;
                        if name.trim().is_empty() {
                            self.error(
                                &source::join(path, "file"),
                                v,
                                "expected a file path, found an empty string",
                            );
                            return None;
                        }
                        SecretRef::File(PathBuf::from(name))
                    }
                    (Some(_), Some(_)) => {
                        self.error_hint(
                            path,
                            value,
                            "a secret is either `env` or `file`, not both",
                            "keep one of them",
                        );
                        return None;
                    }
                    (None, None) => {
                        if dict.keys().all(|k| SECRET_KEYS.contains(&k.as_str())) {
                            self.error_hint(
                                path,
                                value,
                                "empty secret reference",
                                "write `{ env = \"VAR\" }` or `{ file = \"path\" }`",
                            );
                        }
                        return None;
                    }
                }
            }
            _ => {
                // Never show the value: it may be a secret written in the wrong shape.
                let found = self.kind_of(path, value).described();
                self.error_hint(
                    path,
                    value,
                    format!("expected a secret reference, found {found}"),
                    "write `{ env = \"VAR\" }` or `{ file = \"path\" }`",
                );
                return None;
            }
        };
        self.resolve(path, value, reference)
    }

    /// Where a secret reference (already resolved by [`Checker::secret`])
    /// took its value from, for a message about the value: `environment
    /// variable `X``, `secret file `path``, or the manifest itself.
    pub(super) fn secret_source(&self, value: &Value) -> String {
        // Never `value_at`: a literal secret would be handed back as the name.
        let named = |key: &str| match value {
            Value::Dict(_, dict) => match dict.get(key) {
                Some(Value::String(_, name)) => Some(name.as_str()),
                _ => None,
            },
            _ => None,
        };
        if let Some(name) = named("env") {
            format!("environment variable `{name}`")
        } else if let Some(name) = named("file") {
            format!("secret file `{}`", self.base_dir.join(name).display())
        } else {
            "written in the manifest".to_owned()
        }
    }

    fn resolve(&mut self, path: &str, value: &Value, reference: SecretRef) -> Option<Secret> {
        match reference {
            SecretRef::Literal(secret) => {
                if secret.is_blank() {
                    self.error(path, value, "the secret is empty");
                    return None;
                }
                if self.origin(value) == Origin::File {
                    let location = self.at(path, value);
                    self.push(
                        Diagnostic::warning(location, Some(path.to_owned()), "a secret is written in the manifest itself")
                            .with_hint("use `{ env = \"VAR\" }` or `{ file = \"path\" }` to keep secrets out of the file"),
                    );
                }
                Some(secret)
            }
            SecretRef::Env(name) => {
                let path_env = source::join(path, "env");
                let at = value_at(value, "env");
                match self.env.get(&name).map(|v| v.to_str()) {
                    None => {
                        self.error_hint(
                            &path_env,
                            at,
                            format!("environment variable `{name}` is not set"),
                            format!("export {name}=… before running atsprov"),
                        );
                        None
                    }
                    Some(None) => {
                        self.error(
                            &path_env,
                            at,
                            format!("environment variable `{name}` is not valid UTF-8"),
                        );
                        None
                    }
                    Some(Some(v)) if v.trim().is_empty() => {
                        self.error(
                            &path_env,
                            at,
                            format!("environment variable `{name}` is set but empty"),
                        );
                        None
                    }
                    Some(Some(v)) => Some(Secret::new(v.trim())),
                }
            }
            SecretRef::File(relative) => {
                let path_file = source::join(path, "file");
                let at = value_at(value, "file");
                let full = self.base_dir.join(&relative);
                let shown = full.display().to_string();
                let bytes = match bounded::read(&full, MAX_SECRET_BYTES) {
                    Ok((bytes, meta)) => {
                        self.check_permissions(&path_file, at, &shown, &meta);
                        bytes
                    }
                    Err(ReadError::Directory) => {
                        self.error(
                            &path_file,
                            at,
                            format!("secret file `{shown}` is a directory"),
                        );
                        return None;
                    }
                    Err(ReadError::NotRegular(kind)) => {
                        self.error_hint(
                            &path_file,
                            at,
                            format!("secret file `{shown}` is {kind}, not a regular file"),
                            "a secret file holds just the secret; use `{ env = \"VAR\" }` to pass it another way",
                        );
                        return None;
                    }
                    Err(ReadError::TooLarge) => {
                        self.error_hint(
                            &path_file,
                            at,
                            format!(
                                "secret file `{shown}` is larger than {}, the most a secret file may be",
                                bounded::size(MAX_SECRET_BYTES)
                            ),
                            "a secret file holds just the secret (an account key is 88 characters): is this the right file?",
                        );
                        return None;
                    }
                    Err(ReadError::Io(err)) => {
                        let hint = unreadable_hint(err.kind());
                        self.error_hint(
                            &path_file,
                            at,
                            format!(
                                "cannot read secret file `{shown}`: {}",
                                source::io_reason(&err)
                            ),
                            hint,
                        );
                        return None;
                    }
                };
                match String::from_utf8(bytes) {
                    Err(_) => {
                        self.error(
                            &path_file,
                            at,
                            format!("secret file `{shown}` is not valid UTF-8"),
                        );
                        None
                    }
                    Ok(text) if text.trim().is_empty() => {
                        self.error(&path_file, at, format!("secret file `{shown}` is empty"));
                        None
                    }
                    Ok(text) => Some(Secret::new(text.trim())),
                }
            }
        }
    }

    #[cfg(unix)]
    fn check_permissions(
        &mut self,
        path: &str,
        value: &Value,
        shown: &str,
        meta: &std::fs::Metadata,
    ) {
        use std::os::unix::fs::PermissionsExt as _;
        if meta.permissions().mode() & 0o044 != 0 {
            let location = self.at(path, value);
            self.push(
                Diagnostic::warning(
                    location,
                    Some(path.to_owned()),
                    format!("secret file `{shown}` is readable by group or others"),
                )
                .with_hint(format!("chmod 600 {shown}")),
            );
        }
    }

    #[cfg(not(unix))]
    fn check_permissions(&mut self, _: &str, _: &Value, _: &str, _: &std::fs::Metadata) {}
}

/// What to do about a secret file that cannot be read, by why.
fn unreadable_hint(kind: std::io::ErrorKind) -> &'static str {
    match kind {
        std::io::ErrorKind::PermissionDenied => {
            "give the user running atsprov read access to it (and keep it from others: `chmod 600`)"
        }
        _ => "the path is relative to the manifest's directory",
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn an_unreadable_secret_file_gets_the_hint_for_its_cause() {
        // Tests run as root, who reads any file: the cause is tested here.
        let denied = super::unreadable_hint(std::io::ErrorKind::PermissionDenied);
        assert!(denied.contains("read access"), "{denied}");
        let missing = super::unreadable_hint(std::io::ErrorKind::NotFound);
        assert!(missing.contains("relative to the manifest"), "{missing}");
    }
}

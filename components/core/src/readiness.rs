//! The `/ready` report: each dependency checked by name, ready only when all of them answer.

#[derive(Debug)]
pub struct Readiness {
    /// Dependency name -> "ok" or the reason it failed, in the order checked.
    checks: serde_json::Map<String, serde_json::Value>,
    all_ok: bool,
}

impl Default for Readiness {
    fn default() -> Self {
        Self::new()
    }
}

impl Readiness {
    pub fn new() -> Self {
        Self {
            checks: serde_json::Map::new(),
            all_ok: true,
        }
    }

    /// Records one dependency's outcome.
    pub fn check<E: std::fmt::Display>(&mut self, name: &str, outcome: Result<(), E>) {
        let value = match outcome {
            Ok(()) => "ok".to_string(),
            Err(e) => {
                self.all_ok = false;
                e.to_string()
            }
        };
        self.checks.insert(name.to_string(), value.into());
    }

    pub fn is_ready(&self) -> bool {
        self.all_ok
    }

    /// 200 when every dependency answered, 503 otherwise.
    pub fn status(&self) -> u16 {
        if self.all_ok {
            200
        } else {
            503
        }
    }

    pub fn to_json(&self) -> String {
        serde_json::json!({
            "status": if self.all_ok { "ready" } else { "not_ready" },
            "checks": self.checks,
        })
        .to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_only_when_every_check_passes() {
        let mut r = Readiness::new();
        r.check::<String>("key_value", Ok(()));
        assert!(r.is_ready());
        assert_eq!(r.status(), 200);
        r.check("sqlite", Err("disk I/O error"));
        assert!(!r.is_ready());
        assert_eq!(r.status(), 503);
        let v: serde_json::Value = serde_json::from_str(&r.to_json()).unwrap();
        assert_eq!(
            v,
            serde_json::json!({
                "status": "not_ready",
                "checks": {"key_value": "ok", "sqlite": "disk I/O error"}
            })
        );
    }
}

//! Application variables and `{{ name }}` templates, with Spin's semantics.
//!
//! Spin spreads this over several crates; this module reproduces the observable behaviour of:
//!
//! * `crates/expressions/src/template.rs` — the template syntax: literal text with `{{ expr }}`
//!   holes, the expression trimmed of surrounding whitespace, no escape mechanism, an unmatched
//!   `{{` is an error and a stray `}}` is plain text.
//! * `crates/expressions/src/lib.rs` — variable-name rules (`Key::validate`), the resolver
//!   (provider first, then the manifest default), the startup checks done when components are
//!   registered, and the error vocabulary.
//! * `crates/trigger/src/cli/variable.rs` — the startup check that every *required* variable
//!   (one without a default) can be supplied by a provider.
//! * `crates/loader/src/local.rs` (`locked_variable`) — a declaration must be `required` XOR
//!   have a `default`.
//! * `crates/factor-variables/src/host.rs` — how resolution errors map onto the WIT variants
//!   `invalid-name` / `undefined` / `provider` / `other` seen by `fermyon:spin/variables.get`.
//! * `crates/variables-env/src/lib.rs` — the default provider reads `SPIN_VARIABLE_<NAME>`
//!   (name upper-cased) from the process environment.
//!
//! Like Spin, values are resolved when asked for (the provider is consulted on every `get`),
//! so this is a faithful model rather than a snapshot taken at startup.

use std::collections::BTreeMap;
use std::fmt;

/// Prefix of the environment variables read by Spin's default (env) provider.
pub const ENV_PREFIX: &str = "SPIN_VARIABLE";

/// The environment variable Spin's env provider consults for an application variable:
/// `SPIN_VARIABLE_` followed by the name in ASCII upper case (`api_key` -> `SPIN_VARIABLE_API_KEY`).
pub fn env_var_name(name: &str) -> String {
    format!("{ENV_PREFIX}_{}", name.to_ascii_uppercase())
}

/// A provider reading [`env_var_name`] from the process environment, like Spin's default
/// provider. A value that is not valid Unicode counts as absent (Spin reports a provider error).
/// Spin's env provider additionally falls back to a `.env` file in the working directory; that
/// fallback is not reproduced here.
pub fn env_provider() -> impl Fn(&str) -> Option<String> + Send + Sync + 'static {
    |name: &str| std::env::var(env_var_name(name)).ok()
}

/// One entry of the manifest's `[variables]` table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppVariable {
    pub name: String,
    pub default: Option<String>,
    pub required: bool,
    pub secret: bool,
}

/// Errors found while building a [`Resolver`] or resolving a template outside a guest call.
///
/// The first four variants mirror `spin_expressions::Error`; Spin's wording is kept in the
/// messages, with the component and variable added where Spin leaves the reader guessing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VariableError {
    #[error("invalid variable name: {0}")]
    InvalidName(String),
    #[error("invalid variable template: {0}")]
    InvalidTemplate(String),
    #[error("provider error: {0}")]
    Provider(String),
    #[error("undefined variable: {0}")]
    Undefined(String),
    /// Spin's loader rejects a declaration with both or neither of `required` and `default`.
    #[error("invalid application variable {name:?}: must be `required` OR have a `default`")]
    RequiredXorDefault { name: String },
    /// Spin refuses to start when a variable without a default has no value from any provider.
    #[error("no provider resolved required variable(s): {names:?} (set them with SPIN_VARIABLE_<NAME> environment variables)")]
    MissingRequired { names: Vec<String> },
}

/// What `fermyon:spin/variables.get` (and `fermyon:spin/config`, `wasi:config/store`) report,
/// one variant per case of the WIT `error` variant. The payload is the message Spin sends.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GetError {
    #[error("invalid variable name: {0}")]
    InvalidName(String),
    #[error("undefined variable: {0}")]
    Undefined(String),
    #[error("provider error: {0}")]
    Provider(String),
    #[error("{0}")]
    Other(String),
}

impl From<VariableError> for GetError {
    /// Spin's `expressions_to_variables_err`: names, undefined and provider failures keep
    /// their kind; anything else (template errors) becomes `other` with the full message.
    fn from(err: VariableError) -> Self {
        match err {
            VariableError::InvalidName(msg) => GetError::InvalidName(msg),
            VariableError::Undefined(msg) => GetError::Undefined(msg),
            VariableError::Provider(msg) => GetError::Provider(msg),
            other => GetError::Other(other.to_string()),
        }
    }
}

/// Checks a variable name against Spin's `Key::validate` rules: non-empty, only `a-z`, `0-9`
/// and `_`, starting with a letter, ending with a letter or digit, no `__`. (These keep names
/// convertible to environment variable names and file paths.) The error text is Spin's.
pub fn validate_name(name: &str) -> Result<(), VariableError> {
    let reason = if name.is_empty() {
        Some("must not be empty".to_string())
    } else if let Some(bad) = name
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_'))
    {
        Some(format!(
            "invalid character {bad:?}. Variable names may contain only lower-case letters, numbers, and underscores."
        ))
    } else if !name.as_bytes()[0].is_ascii_lowercase() {
        Some("must start with a lowercase ASCII letter".to_string())
    } else if !name.as_bytes()[name.len() - 1].is_ascii_alphanumeric() {
        Some("must end with a lowercase ASCII letter or digit".to_string())
    } else if name.contains("__") {
        Some("must not contain multiple consecutive underscores".to_string())
    } else {
        None
    };
    match reason {
        Some(reason) => Err(VariableError::InvalidName(format!("{name:?}: {reason}"))),
        None => Ok(()),
    }
}

/// A piece of a [`Template`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Part {
    /// Text copied as is.
    Literal(String),
    /// The (trimmed) content of a `{{ ... }}` hole: the name of an application variable.
    Variable(String),
}

/// A parsed `{{ name }}` template (Spin's `spin_expressions::Template`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    parts: Vec<Part>,
}

impl Template {
    /// Splits `text` into literals and `{{ ... }}` holes. A hole runs to the *first* `}}` after
    /// its `{{`, its content is trimmed, and it is not checked here (an unknown or malformed
    /// name is reported when it is resolved or validated against the declarations). There is
    /// no escaping: the only error is a `{{` with no `}}` after it.
    pub fn parse(text: &str) -> Result<Self, VariableError> {
        let mut parts = Vec::new();
        let mut rest = text;
        while !rest.is_empty() {
            if let Some(after_open) = rest.strip_prefix("{{") {
                let Some((expr, after)) = after_open.split_once("}}") else {
                    return Err(VariableError::InvalidTemplate(
                        "unmatched '{{' in template".to_string(),
                    ));
                };
                parts.push(Part::Variable(expr.trim().to_string()));
                rest = after;
            } else {
                let end = rest.find("{{").unwrap_or(rest.len());
                parts.push(Part::Literal(rest[..end].to_string()));
                rest = &rest[end..];
            }
        }
        Ok(Self { parts })
    }

    /// True when the template has no `{{ ... }}` hole.
    pub fn is_literal(&self) -> bool {
        self.parts.iter().all(|p| matches!(p, Part::Literal(_)))
    }

    pub fn parts(&self) -> &[Part] {
        &self.parts
    }

    /// The variable names referenced, in order of appearance (duplicates kept).
    pub fn variables(&self) -> impl Iterator<Item = &str> {
        self.parts.iter().filter_map(|p| match p {
            Part::Variable(name) => Some(name.as_str()),
            Part::Literal(_) => None,
        })
    }

    /// Concatenates the parts, asking `resolve` for each variable.
    fn render<E>(&self, mut resolve: impl FnMut(&str) -> Result<String, E>) -> Result<String, E> {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Literal(lit) => out.push_str(lit),
                Part::Variable(name) => out.push_str(&resolve(name)?),
            }
        }
        Ok(out)
    }
}

impl fmt::Display for Template {
    /// Renders holes in Spin's canonical `{{ name }}` spacing.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for part in &self.parts {
            match part {
                Part::Literal(lit) => f.write_str(lit)?,
                Part::Variable(name) => write!(f, "{{{{ {name} }}}}")?,
            }
        }
        Ok(())
    }
}

type Provider = Box<dyn Fn(&str) -> Option<String> + Send + Sync>;

/// The application's variables and each component's `[component.x.variables]`, resolved the
/// way Spin's variables factor does.
pub struct Resolver {
    /// App variable name -> declaration.
    variables: BTreeMap<String, AppVariable>,
    /// Component id -> component variable name -> template over app variables.
    components: BTreeMap<String, BTreeMap<String, Template>>,
    provider: Provider,
}

impl fmt::Debug for Resolver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Defaults of secret variables must not end up in logs, so only names are shown.
        f.debug_struct("Resolver")
            .field("variables", &self.variables.keys().collect::<Vec<_>>())
            .field(
                "components",
                &self
                    .components
                    .iter()
                    .map(|(id, vars)| (id, vars.keys().collect::<Vec<_>>()))
                    .collect::<BTreeMap<_, _>>(),
            )
            .finish_non_exhaustive()
    }
}

impl Resolver {
    /// The resolver for a loaded `spin.toml`: its `[variables]` and every component's
    /// `[component.*.variables]`, with `provider` for the required ones (see [`Resolver::new`]).
    pub fn for_manifest(
        manifest: &crate::manifest::AppManifest,
        provider: impl Fn(&str) -> Option<String> + Send + Sync + 'static,
    ) -> Result<Self, VariableError> {
        Self::new(
            manifest
                .variables
                .iter()
                .map(|(name, decl)| AppVariable {
                    name: name.clone(),
                    default: decl.default.clone(),
                    required: decl.required,
                    secret: decl.secret,
                })
                .collect(),
            manifest
                .components
                .iter()
                .map(|(id, c)| (id.clone(), c.variables.clone()))
                .collect(),
            provider,
        )
    }

    /// Builds the resolver and runs the checks Spin runs before it serves anything:
    ///
    /// 1. every app variable is `required` XOR has a `default` (loader);
    /// 2. every app variable name and every component variable name is valid (see
    ///    [`validate_name`]);
    /// 3. every component template parses and only references declared app variables;
    /// 4. every required variable (no default) gets a value from `provider`.
    ///
    /// Provider values for variables that have a default are not looked at here, exactly as in
    /// Spin. `components` should list every component (Spin registers even those without
    /// variables); a component missing from it behaves as one with no variables.
    pub fn new(
        app: Vec<AppVariable>,
        components: BTreeMap<String, BTreeMap<String, String>>,
        provider: impl Fn(&str) -> Option<String> + Send + Sync + 'static,
    ) -> Result<Self, VariableError> {
        let mut variables = BTreeMap::new();
        for var in app {
            if var.required == var.default.is_some() {
                return Err(VariableError::RequiredXorDefault { name: var.name });
            }
            validate_name(&var.name)?;
            variables.insert(var.name.clone(), var);
        }

        let mut compiled = BTreeMap::new();
        for (component_id, vars) in components {
            let mut templates = BTreeMap::new();
            for (key, text) in vars {
                let in_component =
                    |msg: String| format!("component {component_id:?}, variable {key:?}: {msg}");
                validate_name(&key).map_err(|err| match err {
                    VariableError::InvalidName(msg) => {
                        VariableError::InvalidName(in_component(msg))
                    }
                    other => other,
                })?;
                let template = Template::parse(&text).map_err(|_| {
                    VariableError::InvalidTemplate(in_component(format!(
                        "unmatched '{{{{' in template {text:?}"
                    )))
                })?;
                if let Some(unknown) = template.variables().find(|v| !variables.contains_key(*v)) {
                    return Err(VariableError::InvalidTemplate(in_component(format!(
                        "unknown variable {unknown:?} (not declared in [variables])"
                    ))));
                }
                templates.insert(key, template);
            }
            compiled.insert(component_id, templates);
        }

        let missing: Vec<String> = variables
            .values()
            .filter(|v| v.default.is_none() && provider(&v.name).is_none())
            .map(|v| v.name.clone())
            .collect();
        if !missing.is_empty() {
            return Err(VariableError::MissingRequired { names: missing });
        }

        Ok(Self {
            variables,
            components: compiled,
            provider: Box::new(provider),
        })
    }

    /// `fermyon:spin/variables.get(name)` as seen by `component_id`: the component variable's
    /// template resolved against the app variables.
    pub fn get(&self, component_id: &str, name: &str) -> Result<String, GetError> {
        validate_name(name)?;
        let template = self
            .components
            .get(component_id)
            .and_then(|vars| vars.get(name))
            .ok_or_else(|| {
                GetError::Undefined(format!("no variable for {component_id:?}.{name:?}"))
            })?;
        Ok(template.render(|var| self.resolve_declared(var))?)
    }

    /// Every variable of `component_id`, resolved (`wasi:config/store.get-all`).
    pub fn get_all(&self, component_id: &str) -> Result<Vec<(String, String)>, GetError> {
        let Some(vars) = self.components.get(component_id) else {
            return Ok(Vec::new());
        };
        vars.iter()
            .map(|(key, template)| {
                let value = template.render(|var| self.resolve_declared(var))?;
                Ok((key.clone(), value))
            })
            .collect()
    }

    /// Resolves a template against the app variables, as Spin does for templated
    /// `allowed_outbound_hosts` entries: each variable is its provider value, else its default.
    /// An undeclared variable is an error (`InvalidName`), as is a malformed template.
    pub fn resolve_template(&self, template: &str) -> Result<String, VariableError> {
        Template::parse(template)?.render(|var| self.resolve_declared(var))
    }

    /// Resolves a template the way Spin resolves trigger settings (e.g. a Redis trigger's
    /// `address`/`channel`): the provider is asked first for *any* name, declared or not; only
    /// then are declarations consulted. Differs from [`Self::resolve_template`] only for
    /// undeclared names that the provider happens to know.
    pub fn resolve_expression(&self, template: &str) -> Result<String, VariableError> {
        Template::parse(template)?.render(|var| match (self.provider)(var) {
            Some(value) => Ok(value),
            None => self.resolve_default(var),
        })
    }

    /// Resolves a template using manifest defaults only, ignoring the provider. Spin's loader
    /// uses this to validate templated `allowed_outbound_hosts` before the app runs.
    pub fn resolve_template_with_defaults(&self, template: &str) -> Result<String, VariableError> {
        Template::parse(template)?.render(|var| self.resolve_default(var))
    }

    /// The declaration of an app variable, if any.
    pub fn variable(&self, name: &str) -> Option<&AppVariable> {
        self.variables.get(name)
    }

    /// Provider value, else default, for a declared variable.
    fn resolve_declared(&self, name: &str) -> Result<String, VariableError> {
        if !self.variables.contains_key(name) {
            // Unreachable for component templates (checked in `new`); Spin reports it so.
            return Err(VariableError::InvalidName(format!(
                "{name:?}: not declared in [variables]"
            )));
        }
        match (self.provider)(name) {
            Some(value) => Ok(value),
            None => self.resolve_default(name),
        }
    }

    /// The manifest default of a declared variable.
    fn resolve_default(&self, name: &str) -> Result<String, VariableError> {
        let var = self.variables.get(name).ok_or_else(|| {
            VariableError::InvalidName(format!("{name:?}: not declared in [variables]"))
        })?;
        var.default.clone().ok_or_else(|| {
            // Spin's wording (`spin_expressions::Resolver::resolve_variable`).
            VariableError::Provider(format!("no provider resolved required variable {name:?}"))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn var(name: &str, default: Option<&str>) -> AppVariable {
        AppVariable {
            name: name.into(),
            default: default.map(Into::into),
            required: default.is_none(),
            secret: false,
        }
    }

    fn component(id: &str, vars: &[(&str, &str)]) -> BTreeMap<String, BTreeMap<String, String>> {
        BTreeMap::from([(
            id.to_string(),
            vars.iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )])
    }

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> + Send + Sync + 'static {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |name| map.get(&env_var_name(name)).cloned()
    }

    /// Spin's `expressions/src/lib.rs` test fixture: `required` (provider-supplied) and
    /// `default`, one component variable `test_key` holding the template under test.
    fn spin_fixture(template: &str) -> Resolver {
        Resolver::new(
            vec![var("required", None), var("default", Some("default-value"))],
            component("test-component", &[("test_key", template)]),
            |name| (name == "required").then(|| "provider-value".to_string()),
        )
        .unwrap()
    }

    #[test]
    fn resolves_like_spin_expressions_tests() {
        // resolve_static / resolve_variable_default / resolve_variable_provider
        let get = |t| spin_fixture(t).get("test-component", "test_key").unwrap();
        assert_eq!(get("static-value"), "static-value");
        assert_eq!(
            get("prefix-{{ default }}-suffix"),
            "prefix-default-value-suffix"
        );
        assert_eq!(
            get("prefix-{{ required }}-suffix"),
            "prefix-provider-value-suffix"
        );
    }

    #[test]
    fn keys_like_spin() {
        // keys_good / keys_bad from spin-expressions
        for key in ["a", "abc", "a1b2c3", "a_1", "a_1_b_3"] {
            validate_name(key).expect(key);
        }
        for key in ["", "aX", "1bc", "_x", "x.y", "x_", "a__b", "x-y"] {
            validate_name(key).expect_err(key);
        }
    }

    #[test]
    fn template_parts_like_spin() {
        let lit = |s: &str| Part::Literal(s.into());
        let expr = |s: &str| Part::Variable(s.into());
        for (text, expected) in [
            ("", vec![]),
            ("a", vec![lit("a")]),
            ("a-{{ expr }}-b", vec![lit("a-"), expr("expr"), lit("-b")]),
            ("{{ expr1 }}{{ expr2 }}", vec![expr("expr1"), expr("expr2")]),
            // No whitespace needed; whitespace (incl. tabs/newlines) is trimmed.
            ("{{x}}", vec![expr("x")]),
            ("{{ \t x\n }}", vec![expr("x")]),
            // A hole ends at the first `}}`; a stray `}}` or `{` is literal text.
            ("{{ a }}}", vec![expr("a"), lit("}")]),
            ("a }} b", vec![lit("a }} b")]),
            ("{ a }", vec![lit("{ a }")]),
        ] {
            assert_eq!(
                Template::parse(text).unwrap().parts(),
                &expected[..],
                "{text:?}"
            );
        }
        Template::parse("{{ matched }} {{ unmatched").unwrap_err();
        assert!(Template::parse("hello").unwrap().is_literal());
        assert!(!Template::parse("hello {{ world }}").unwrap().is_literal());
        assert_eq!(Template::parse("a{{x}}b").unwrap().to_string(), "a{{ x }}b");
    }

    #[test]
    fn default_used_when_provider_has_nothing_and_provider_overrides_default() {
        let components = component("c", &[("greeting", "hello {{ who }}")]);
        let r = Resolver::new(
            vec![var("who", Some("world"))],
            components.clone(),
            env(&[]),
        )
        .unwrap();
        assert_eq!(r.get("c", "greeting").unwrap(), "hello world");

        let r = Resolver::new(
            vec![var("who", Some("world"))],
            components,
            env(&[("SPIN_VARIABLE_WHO", "spin")]),
        )
        .unwrap();
        assert_eq!(r.get("c", "greeting").unwrap(), "hello spin");
    }

    #[test]
    fn env_name_is_prefixed_and_upper_cased() {
        assert_eq!(env_var_name("api_key"), "SPIN_VARIABLE_API_KEY");
        assert_eq!(env_var_name("a1"), "SPIN_VARIABLE_A1");
    }

    #[test]
    fn required_variable_present_or_missing() {
        let components = component("c", &[("key", "{{ api_key }}")]);
        let r = Resolver::new(
            vec![var("api_key", None)],
            components.clone(),
            env(&[("SPIN_VARIABLE_API_KEY", "s3cret")]),
        )
        .unwrap();
        assert_eq!(r.get("c", "key").unwrap(), "s3cret");

        // Spin fails at startup (VariablesValidatorHook), even if no component uses it.
        let err = Resolver::new(vec![var("api_key", None)], BTreeMap::new(), env(&[])).unwrap_err();
        assert_eq!(
            err,
            VariableError::MissingRequired {
                names: vec!["api_key".into()]
            }
        );
        assert!(err.to_string().contains("api_key"), "{err}");
    }

    #[test]
    fn required_xor_default() {
        let both = AppVariable {
            name: "x".into(),
            default: Some("d".into()),
            required: true,
            secret: false,
        };
        let neither = AppVariable {
            name: "x".into(),
            default: None,
            required: false,
            secret: false,
        };
        for decl in [both, neither] {
            assert!(matches!(
                Resolver::new(vec![decl], BTreeMap::new(), env(&[])),
                Err(VariableError::RequiredXorDefault { .. })
            ));
        }
    }

    #[test]
    fn invalid_names_rejected_at_startup() {
        let err =
            Resolver::new(vec![var("Bad", Some("v"))], BTreeMap::new(), env(&[])).unwrap_err();
        assert!(matches!(err, VariableError::InvalidName(ref m) if m.contains("\"Bad\"")));

        let err = Resolver::new(vec![], component("c", &[("bad-key", "v")]), env(&[])).unwrap_err();
        assert!(
            matches!(err, VariableError::InvalidName(ref m) if m.contains("\"c\"") && m.contains("bad-key")),
            "{err}"
        );
    }

    #[test]
    fn templates_checked_at_startup() {
        // Reference to an undeclared app variable.
        let err = Resolver::new(
            vec![var("known", Some("v"))],
            component("c", &[("k", "{{ unknown }}")]),
            env(&[]),
        )
        .unwrap_err();
        assert!(
            matches!(err, VariableError::InvalidTemplate(ref m) if m.contains("\"unknown\"") && m.contains("\"c\"")),
            "{err}"
        );
        // Names inside holes are matched exactly: `{{ Known }}` is not `known`.
        Resolver::new(
            vec![var("known", Some("v"))],
            component("c", &[("k", "{{ Known }}")]),
            env(&[]),
        )
        .unwrap_err();
        // Malformed template.
        let err = Resolver::new(vec![], component("c", &[("k", "a {{ b")]), env(&[])).unwrap_err();
        assert!(matches!(err, VariableError::InvalidTemplate(_)), "{err}");
    }

    #[test]
    fn get_errors_match_wit_variants() {
        let r = Resolver::new(
            vec![var("host", Some("example.com"))],
            BTreeMap::from([
                (
                    "c".to_string(),
                    BTreeMap::from([("url".to_string(), "https://{{ host }}".to_string())]),
                ),
                ("other".to_string(), BTreeMap::new()),
            ]),
            env(&[]),
        )
        .unwrap();
        assert_eq!(r.get("c", "url").unwrap(), "https://example.com");

        // Invalid names are rejected before any lookup.
        for bad in ["URL", "", "u-rl", "_url", "url_", "u__rl"] {
            assert!(
                matches!(r.get("c", bad), Err(GetError::InvalidName(_))),
                "{bad}"
            );
        }
        // Variables are per component: an app variable is not a component variable, and
        // another component's variable is not visible.
        assert_eq!(
            r.get("c", "host"),
            Err(GetError::Undefined("no variable for \"c\".\"host\"".into()))
        );
        assert!(matches!(r.get("other", "url"), Err(GetError::Undefined(_))));
        assert!(matches!(
            r.get("unlisted", "url"),
            Err(GetError::Undefined(_))
        ));
    }

    #[test]
    fn get_all_resolves_every_component_variable() {
        let r = Resolver::new(
            vec![var("a", Some("1")), var("b", Some("2"))],
            component("c", &[("x", "{{ a }}"), ("y", "{{ a }}{{ b }}")]),
            env(&[("SPIN_VARIABLE_B", "9")]),
        )
        .unwrap();
        assert_eq!(
            r.get_all("c").unwrap(),
            vec![("x".into(), "1".into()), ("y".into(), "19".into())]
        );
        assert!(r.get_all("none").unwrap().is_empty());
    }

    #[test]
    fn resolve_template_for_outbound_hosts() {
        let r = Resolver::new(
            vec![var("upstream_host", Some("localhost")), var("port", None)],
            BTreeMap::new(),
            env(&[("SPIN_VARIABLE_PORT", "8080")]),
        )
        .unwrap();
        assert_eq!(
            r.resolve_template("http://{{ upstream_host }}:{{port}}")
                .unwrap(),
            "http://localhost:8080"
        );
        assert!(matches!(
            r.resolve_template("http://{{ nope }}"),
            Err(VariableError::InvalidName(_))
        ));
        assert!(matches!(
            r.resolve_template("http://{{ nope"),
            Err(VariableError::InvalidTemplate(_))
        ));
        // Defaults only: the required `port` has no default, so this fails like Spin's
        // load-time validation resolver does.
        assert_eq!(
            r.resolve_template_with_defaults("{{ upstream_host }}")
                .unwrap(),
            "localhost"
        );
        assert!(matches!(
            r.resolve_template_with_defaults("{{ port }}"),
            Err(VariableError::Provider(_))
        ));
    }

    #[test]
    fn resolve_expression_asks_provider_first_for_any_name() {
        let r = Resolver::new(
            vec![var("declared", Some("d"))],
            BTreeMap::new(),
            env(&[("SPIN_VARIABLE_UNDECLARED", "u")]),
        )
        .unwrap();
        assert_eq!(r.resolve_expression("{{ undeclared }}").unwrap(), "u");
        assert_eq!(r.resolve_expression("{{ declared }}").unwrap(), "d");
        assert!(r.resolve_template("{{ undeclared }}").is_err());
    }

    #[test]
    fn get_error_mapping() {
        assert_eq!(
            GetError::from(VariableError::InvalidTemplate("x".into())),
            GetError::Other("invalid variable template: x".into())
        );
        assert_eq!(
            GetError::from(VariableError::Provider("p".into())),
            GetError::Provider("p".into())
        );
    }

    #[test]
    fn debug_does_not_leak_values() {
        let r = Resolver::new(
            vec![AppVariable {
                name: "password".into(),
                default: Some("hunter2".into()),
                required: false,
                secret: true,
            }],
            BTreeMap::new(),
            env(&[]),
        )
        .unwrap();
        let dbg = format!("{r:?}");
        assert!(
            dbg.contains("password") && !dbg.contains("hunter2"),
            "{dbg}"
        );
    }
}

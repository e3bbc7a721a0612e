//! Why a manifest could not be loaded, in Spin's words where Spin has them.

use std::path::PathBuf;

/// Why a manifest could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    /// The file could not be read.
    #[error("Failed to read Spin app manifest from {}: {source}", path.display())]
    Read {
        /// The manifest path.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A manifest file failed to parse or validate; wraps the reason with the file name.
    #[error("Failed to load Spin app from {}: {source}", path.display())]
    InFile {
        /// The manifest path.
        path: PathBuf,
        /// What is wrong with it.
        source: Box<ManifestError>,
    },
    /// TOML syntax or schema error (position included).
    #[error(transparent)]
    Toml(#[from] toml::de::Error),
    /// `spin_manifest_version` is neither `"1"` nor `2`.
    #[error("invalid manifest version: {0}")]
    InvalidVersion(String),
    /// `spin_manifest_version = "1"`.
    #[error(
        "spin_manifest_version = \"1\" manifests are not supported by this host; \
         convert the manifest to version 2 (`spin doctor` can do this)"
    )]
    UnsupportedV1,
    /// An application variable is invalid.
    #[error("invalid variable definition for `{name}`: {reason}")]
    InvalidVariable {
        /// The variable name.
        name: String,
        /// What is wrong.
        reason: String,
    },
    /// `[application.trigger.http]` is invalid.
    #[error("invalid [application.trigger.http]: {0}")]
    InvalidHttpApplicationConfig(String),
    /// A `[[trigger.http]]` entry is invalid or unsupported.
    #[error("invalid `http` trigger config for trigger `{trigger}`: {reason}")]
    InvalidTrigger {
        /// The trigger ID (possibly generated).
        trigger: String,
        /// What is wrong.
        reason: String,
    },
    /// A trigger names a component that is not defined.
    #[error(
        "trigger `{trigger}` uses component `{component}`, which is not defined \
         (there is no [component.{component}] table)"
    )]
    MissingComponent {
        /// The trigger ID (possibly generated).
        trigger: String,
        /// The missing component ID.
        component: String,
    },
    /// A component is invalid or uses an unsupported feature.
    #[error("invalid component `{component}`: {reason}")]
    InvalidComponent {
        /// The component ID.
        component: String,
        /// What is wrong.
        reason: String,
    },
    /// A trigger type other than `http`.
    #[error(
        "trigger type `{0}` is not supported by this host: only [[trigger.http]] triggers can run"
    )]
    UnsupportedTriggerType(String),
}

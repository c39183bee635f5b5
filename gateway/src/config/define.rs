//! The `settings!` macro: from one list entry per setting it builds the
//! setting's field (with its default), its flag and environment variable
//! (clap), its config file key, how a layer is applied, and its row in
//! [`SETTINGS`](super::SETTINGS), which `--help` and the README test read.
//!
//! Settings come in groups, one struct and one config file section each
//! (`group limits: Limits, args LimitsArgs { ... }` is `[limits]`). An
//! entry in a group is its help, then
//! `name: Type [= default] => key "file_key", flag "flag-name", env "ENV_NAME" [, arg(clap attributes)];`
//! A setting without a default is optional (`Option<Type>`, unset). The
//! type implements [`SettingValue`](super::SettingValue), which reads flags,
//! environment variables and file values alike.

/// One row of the settings table.
#[derive(Debug, Clone, Copy)]
pub struct Setting {
    /// The field name.
    pub name: &'static str,
    /// The config file section (`[limits]`, ...).
    pub section: &'static str,
    /// The key inside the section.
    pub key: &'static str,
    /// The flag, without its leading `--`.
    pub flag: &'static str,
    /// The environment variable.
    pub env: &'static str,
    /// The default, as shown (`unset` for an optional setting).
    pub default: fn() -> String,
    /// Its help, as written above its entry.
    pub help: &'static str,
}

impl Setting {
    /// `section.key`, as the README names it.
    pub fn file_key(&self) -> String {
        format!("{}.{}", self.section, self.key)
    }
}

macro_rules! settings {
    (@ty $t:ty, $d:expr) => { $t };
    (@ty $t:ty) => { Option<$t> };
    (@default $t:ty, $d:expr) => { $d };
    (@default $t:ty) => { None };
    (@set $slot:expr, $v:expr, $d:expr) => { $slot = $v };
    (@set $slot:expr, $v:expr) => { $slot = Some($v) };
    (@show $t:ty, $d:expr) => { <$t as $crate::config::SettingValue>::show(&$d) };
    (@show $t:ty) => { "unset".to_string() };
    (
        $(
            $(#[doc = $group_doc:literal])*
            group $g:ident: $Group:ident, args $Args:ident {
                $(
                    $(#[doc = $doc:literal])*
                    $field:ident: $ty:ty $(= $default:expr)? =>
                        key $key:literal, flag $flag:literal, env $env:literal
                        $(, arg($($extra:tt)*))?;
                )*
            }
        )*
    ) => {
        $(
            $(#[doc = $group_doc])*
            #[derive(Debug, Clone)]
            pub struct $Group {
                $(
                    $(#[doc = $doc])*
                    pub $field: settings!(@ty $ty $(, $default)?),
                )*
            }

            impl Default for $Group {
                fn default() -> Self {
                    $Group {
                        $( $field: settings!(@default $ty $(, $default)?), )*
                    }
                }
            }

            #[doc = concat!("One layer of [`", stringify!($Group), "`]: the flags and environment")]
            #[doc = "variables (clap reads both, flags first), or the config file's section."]
            #[doc = "What a layer leaves unset keeps the value of the layers below."]
            #[derive(Debug, Clone, Default, clap::Args)]
            pub struct $Args {
                $(
                    $(#[doc = $doc])*
                    #[arg(
                        long = $flag,
                        env = $env,
                        value_parser = <$ty as $crate::config::SettingValue>::parse_text
                        $(, $($extra)*)?
                    )]
                    pub $field: Option<$ty>,
                )*
            }

            impl $Args {
                /// Reads the config file's section; unknown keys are refused.
                pub fn from_file(
                    section: Option<&serde_json::Map<String, serde_json::Value>>,
                ) -> Result<Self, String> {
                    let mut layer = Self::default();
                    let Some(section) = section else { return Ok(layer) };
                    for (key, value) in section {
                        match key.as_str() {
                            $(
                                $key => {
                                    layer.$field = Some(
                                        <$ty as $crate::config::SettingValue>::from_file(value)
                                            .map_err(|e| format!("[{}] {}: {e}", stringify!($g), $key))?,
                                    );
                                }
                            )*
                            other => {
                                return Err(format!("[{}]: unknown key {other:?}", stringify!($g)));
                            }
                        }
                    }
                    Ok(layer)
                }

                /// Sets what this layer sets.
                pub fn apply(self, to: &mut $Group) {
                    $(
                        if let Some(v) = self.$field {
                            settings!(@set to.$field, v $(, $default)?);
                        }
                    )*
                }
            }
        )*

        /// Every setting, in the order `--help` and the README list them.
        pub const SETTINGS: &[$crate::config::Setting] = &[
            $($(
                $crate::config::Setting {
                    name: stringify!($field),
                    section: stringify!($g),
                    key: $key,
                    flag: $flag,
                    env: $env,
                    default: || settings!(@show $ty $(, $default)?),
                    help: concat!($($doc),*),
                },
            )*)*
        ];

        /// The config file sections that hold settings.
        pub const SECTIONS: &[&str] = &[$(stringify!($g)),*];

        /// Every setting's value.
        #[derive(Debug, Clone, Default)]
        pub struct Settings {
            $(
                $(#[doc = $group_doc])*
                pub $g: $Group,
            )*
        }

        /// One layer of every setting: the flags and environment variables,
        /// or the config file.
        #[derive(Debug, Clone, Default, clap::Args)]
        pub struct SettingsArgs {
            $(
                #[command(flatten)]
                #[allow(missing_docs)]
                pub $g: $Args,
            )*
        }

        impl SettingsArgs {
            /// Reads the sections of a config file (other top-level keys are
            /// left to the caller).
            pub fn from_file(
                root: &serde_json::Map<String, serde_json::Value>,
            ) -> Result<Self, String> {
                Ok(SettingsArgs {
                    $(
                        $g: $Args::from_file(match root.get(stringify!($g)) {
                            None => None,
                            Some(serde_json::Value::Object(section)) => Some(section),
                            Some(_) => {
                                return Err(format!("[{}] must be a table", stringify!($g)))
                            }
                        })?,
                    )*
                })
            }

            /// Sets what this layer sets.
            pub fn apply(self, to: &mut Settings) {
                $( self.$g.apply(&mut to.$g); )*
            }
        }
    };
}

pub(crate) use settings;

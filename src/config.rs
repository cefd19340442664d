//! Configuration: command-line flags merged over an optional YAML file, validated into [`Config`].

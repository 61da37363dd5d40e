//! The imported DAG in drover's native format, as `drover import tosca` writes it.

use serde::Serialize;
use serde::ser::{SerializeMap, Serializer};

/// A DAG in drover's native format (see `host/docs/running.md`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NativeDag {
    pub name: String,
    pub nodes: Ordered<NativeNode>,
}

/// A mapping written in the order of its entries.
#[derive(Debug, Clone, PartialEq)]
pub struct Ordered<T>(pub Vec<(String, T)>);

impl<T> Default for Ordered<T> {
    fn default() -> Self {
        Ordered(Vec::new())
    }
}

impl<T> Ordered<T> {
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The value of `key`.
    pub fn get(&self, key: &str) -> Option<&T> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }
}

impl<T: Serialize> Serialize for Ordered<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (key, value) in &self.0 {
            map.serialize_entry(key, value)?;
        }
        map.end()
    }
}

/// One node of a [`NativeDag`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NativeNode {
    pub driver: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub needs: Vec<String>,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub artifact: String,
    #[serde(skip_serializing_if = "Ordered::is_empty")]
    pub env: Ordered<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub outputs: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeout: Option<String>,
}

impl NativeDag {
    /// The DAG as YAML, after a comment line saying where it came from.
    pub fn to_yaml(&self, source: &str) -> Result<String, serde_yaml_ng::Error> {
        let body = serde_yaml_ng::to_string(self)?;
        // One line: a source name holding a line break must not end the comment.
        let source = source.replace(['\n', '\r'], " ");
        Ok(format!(
            "# Imported from the TOSCA service template {source} by `drover import tosca`.\n{body}"
        ))
    }

    /// The DAG as JSON.
    pub fn to_json(&self) -> Result<String, serde_json::Error> {
        let mut text = serde_json::to_string_pretty(self)?;
        text.push('\n');
        Ok(text)
    }

    /// The node called `name`.
    pub fn node(&self, name: &str) -> Option<&NativeNode> {
        self.nodes.get(name)
    }
}

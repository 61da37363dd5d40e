//! Node types: TOSCA's normative ones, those a template defines or imports, and what a template
//! inherits from its type's chain (attributes, property defaults, operations).

use std::collections::HashMap;

use crate::dag::raw::Raw;

use super::model::{Interface, Issue, NodeType, Operation};

/// A normative node type: its name, parent and the attributes it adds.
struct Normative {
    name: &'static str,
    parent: Option<&'static str>,
    attributes: &'static [&'static str],
}

/// TOSCA Simple Profile's normative node types (1.0 to 1.3). `ip_address`
/// on Compute is its endpoint capability's attribute, which gorchestrator's
/// graphs read from the Compute itself (`get_attribute d:ip_address`).
const NORMATIVE: &[Normative] = &[
    Normative {
        name: "tosca.nodes.Root",
        parent: None,
        attributes: &["tosca_id", "tosca_name", "state"],
    },
    Normative {
        name: "tosca.nodes.Compute",
        parent: Some("tosca.nodes.Root"),
        attributes: &[
            "private_address",
            "public_address",
            "networks",
            "ports",
            "ip_address",
        ],
    },
    Normative {
        name: "tosca.nodes.SoftwareComponent",
        parent: Some("tosca.nodes.Root"),
        attributes: &[],
    },
    Normative {
        name: "tosca.nodes.WebServer",
        parent: Some("tosca.nodes.SoftwareComponent"),
        attributes: &[],
    },
    Normative {
        name: "tosca.nodes.WebApplication",
        parent: Some("tosca.nodes.Root"),
        attributes: &[],
    },
    Normative {
        name: "tosca.nodes.DBMS",
        parent: Some("tosca.nodes.SoftwareComponent"),
        attributes: &[],
    },
    Normative {
        name: "tosca.nodes.Database",
        parent: Some("tosca.nodes.Root"),
        attributes: &[],
    },
    Normative {
        name: "tosca.nodes.ObjectStorage",
        parent: Some("tosca.nodes.Root"),
        attributes: &[],
    },
    Normative {
        name: "tosca.nodes.BlockStorage",
        parent: Some("tosca.nodes.Root"),
        attributes: &[],
    },
    Normative {
        name: "tosca.nodes.Storage.ObjectStorage",
        parent: Some("tosca.nodes.Root"),
        attributes: &[],
    },
    Normative {
        name: "tosca.nodes.Storage.BlockStorage",
        parent: Some("tosca.nodes.Root"),
        attributes: &[],
    },
    Normative {
        name: "tosca.nodes.Container.Runtime",
        parent: Some("tosca.nodes.SoftwareComponent"),
        attributes: &[],
    },
    Normative {
        name: "tosca.nodes.Container.Application",
        parent: Some("tosca.nodes.Root"),
        attributes: &[],
    },
    Normative {
        name: "tosca.nodes.LoadBalancer",
        parent: Some("tosca.nodes.Root"),
        attributes: &[],
    },
    Normative {
        name: "tosca.nodes.network.Network",
        parent: Some("tosca.nodes.Root"),
        attributes: &[],
    },
    Normative {
        name: "tosca.nodes.network.Port",
        parent: Some("tosca.nodes.Root"),
        attributes: &[],
    },
];

/// The full name of a normative type written short (`Compute`,
/// `tosca:Compute`); other names as they are.
fn full_name(name: &str) -> String {
    let short = name.strip_prefix("tosca:").unwrap_or(name);
    let full = format!("tosca.nodes.{short}");
    if NORMATIVE.iter().any(|n| n.name == full) {
        full
    } else {
        name.to_owned()
    }
}

/// What a template gets from its type and the type's ancestors.
#[derive(Debug, Default)]
pub(super) struct Inherited {
    /// Whether the whole chain is known; if not, any attribute may be read.
    pub known: bool,
    /// Attributes, the type's own first, then its parent's, and so on.
    pub attributes: Vec<String>,
    /// Property defaults, the nearest type's winning.
    pub defaults: Vec<(String, Raw)>,
    /// Properties declared anywhere in the chain.
    pub properties: Vec<String>,
    /// Standard operations, a type's overriding its parent's.
    pub interface: Interface,
    /// The unsupported parts of the chain's types.
    pub unsupported: Vec<Issue>,
    /// The chain, from the type itself up; for messages.
    pub chain: Vec<String>,
}

/// Every node type a template may use.
pub(super) struct Types {
    defined: HashMap<String, NodeType>,
}

impl Types {
    /// The types defined in the template and its imports (the first
    /// definition of a name wins, as the template's come first).
    pub fn new(defined: Vec<NodeType>) -> Types {
        let mut map = HashMap::with_capacity(defined.len());
        for node_type in defined {
            map.entry(node_type.name.clone()).or_insert(node_type);
        }
        Types { defined: map }
    }

    /// What a template of type `name` inherits.
    pub fn inherit(&self, name: &str) -> Inherited {
        let mut inherited = Inherited {
            known: true,
            ..Inherited::default()
        };
        // Root to leaf, for operations and inputs to override in that order.
        let mut interfaces: Vec<&Interface> = Vec::new();
        let mut next = Some(name.to_owned());
        while let Some(current) = next.take() {
            if inherited.chain.contains(&current) {
                // A loop in `derived_from`: the chain so far is all there is.
                inherited.known = false;
                break;
            }
            inherited.chain.push(current.clone());
            if let Some(defined) = self.defined.get(&current) {
                push_new(
                    &mut inherited.attributes,
                    defined.attributes.iter().cloned(),
                );
                for (property, default) in &defined.properties {
                    push_new(&mut inherited.properties, [property.clone()]);
                    if let Some(default) = default
                        && !inherited.defaults.iter().any(|(p, _)| p == property)
                    {
                        inherited.defaults.push((property.clone(), default.clone()));
                    }
                }
                interfaces.push(&defined.interface);
                inherited
                    .unsupported
                    .extend(defined.unsupported.iter().cloned());
                next = defined.derived_from.as_deref().map(full_name);
            } else if let Some(normative) = NORMATIVE.iter().find(|n| n.name == full_name(&current))
            {
                push_new(
                    &mut inherited.attributes,
                    normative.attributes.iter().map(|a| (*a).to_owned()),
                );
                next = normative.parent.map(str::to_owned);
            } else {
                inherited.known = false;
            }
        }
        if !inherited.known {
            // Every node has the root type's attributes.
            push_new(
                &mut inherited.attributes,
                NORMATIVE[0].attributes.iter().map(|a| (*a).to_owned()),
            );
        }
        for interface in interfaces.into_iter().rev() {
            merge_interface(&mut inherited.interface, interface);
        }
        inherited
    }

    /// Whether `name` names a node type (to tell a requirement naming a
    /// type from one naming a missing template).
    pub fn is_type(&self, name: &str) -> bool {
        self.defined.contains_key(name) || NORMATIVE.iter().any(|n| n.name == full_name(name))
    }
}

/// Adds what `items` has that `list` lacks, in order.
fn push_new(list: &mut Vec<String>, items: impl IntoIterator<Item = String>) {
    for item in items {
        if !list.contains(&item) {
            list.push(item);
        }
    }
}

/// Lays `over` on `base`: its operations replace the base's of the same
/// step (their inputs added to the base's), its inputs override by name.
pub(super) fn merge_interface(base: &mut Interface, over: &Interface) {
    merge_inputs(&mut base.inputs, &over.inputs);
    for operation in &over.operations {
        match base
            .operations
            .iter_mut()
            .find(|o| o.step == operation.step)
        {
            Some(existing) => {
                let mut inputs = std::mem::take(&mut existing.inputs);
                merge_inputs(&mut inputs, &operation.inputs);
                *existing = Operation {
                    inputs,
                    implementation: operation
                        .implementation
                        .clone()
                        .or_else(|| existing.implementation.take()),
                    ..operation.clone()
                };
            }
            None => base.operations.push(operation.clone()),
        }
    }
    base.operations.sort_by_key(|o| o.step);
}

/// Inputs of `over` replace those of `base` with the same name, in place.
fn merge_inputs(base: &mut Vec<super::model::Assigned>, over: &[super::model::Assigned]) {
    for input in over {
        match base.iter_mut().find(|i| i.name == input.name) {
            Some(existing) => *existing = input.clone(),
            None => base.push(input.clone()),
        }
    }
}

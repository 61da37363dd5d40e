//! The node's `args`: inventory, extra vars and the few ansible-playbook flags a node may set.

/// The node's arguments, checked.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct PlaybookArgs {
    /// `-i/--inventory`: a host list (`web1,web2,`) or a path processes can read.
    pub(crate) inventory: Option<String>,
    /// `--playbook`: the playbook inside a project folder artifact, relative to it.
    pub(crate) playbook: Option<String>,
    /// Everything else, as ansible-playbook arguments, in order.
    pub(crate) passthrough: Vec<String>,
}

/// Flags that take a value: (short, long, ansible-playbook's spelling).
const WITH_VALUE: &[(Option<&str>, &str)] = &[
    (Some("-e"), "--extra-vars"),
    (Some("-l"), "--limit"),
    (Some("-t"), "--tags"),
    (None, "--skip-tags"),
];
/// Flags without a value.
const FLAGS: &[&str] = &["--check", "--diff", "-v", "-vv", "-vvv", "-vvvv"];

const USAGE: &str = "the ansible driver takes -i/--inventory INVENTORY, -e/--extra-vars VARS, \
                     -l/--limit HOSTS, -t/--tags TAGS, --skip-tags TAGS, --check, --diff, -v..-vvvv \
                     and --playbook FILE";

impl PlaybookArgs {
    /// Parses `args`, or says which one is wrong.
    pub(crate) fn parse(args: &[String]) -> Result<PlaybookArgs, String> {
        let mut parsed = PlaybookArgs::default();
        let mut iter = args.iter();
        while let Some(arg) = iter.next() {
            let (flag, inline) = match arg.split_once('=') {
                Some((flag, value)) if flag.starts_with("--") => (flag, Some(value)),
                _ => (arg.as_str(), None),
            };
            let mut value = |long: &str| -> Result<String, String> {
                match inline {
                    Some(v) => Ok(v.to_owned()),
                    None => iter
                        .next()
                        .cloned()
                        .ok_or_else(|| format!("`{arg}` needs a value ({long} VALUE)")),
                }
            };
            if flag == "-i" || flag == "--inventory" {
                if parsed.inventory.is_some() {
                    return Err("the inventory is given twice (-i/--inventory)".to_owned());
                }
                let inventory = value("--inventory")?;
                if inventory.trim().is_empty() {
                    return Err("the inventory (-i/--inventory) is empty".to_owned());
                }
                parsed.inventory = Some(inventory);
            } else if flag == "--playbook" {
                if parsed.playbook.is_some() {
                    return Err("the playbook is given twice (--playbook)".to_owned());
                }
                let playbook = value("--playbook")?;
                check_playbook_name(&playbook)?;
                parsed.playbook = Some(playbook);
            } else if let Some((_, long)) = WITH_VALUE
                .iter()
                .find(|(short, long)| Some(flag) == *short || flag == *long)
            {
                let v = value(long)?;
                parsed.passthrough.push((*long).to_owned());
                parsed.passthrough.push(v);
            } else if FLAGS.contains(&flag) && inline.is_none() {
                parsed.passthrough.push(flag.to_owned());
            } else {
                return Err(format!("unknown argument `{arg}`: {USAGE}"));
            }
        }
        Ok(parsed)
    }
}

/// A `--playbook` must stay inside the project folder: elsewhere the sandbox would not let
/// ansible read it anyway, and saying so now is clearer than ansible's "could not be found".
fn check_playbook_name(name: &str) -> Result<(), String> {
    let trimmed = name.trim();
    if trimmed.is_empty() {
        return Err("the playbook (--playbook) is empty".to_owned());
    }
    if trimmed.starts_with('/') || trimmed.split('/').any(|part| part == "..") {
        return Err(format!(
            "--playbook `{name}` must be a path inside the project folder (the artifact), \
             without a leading `/` or `..`"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<PlaybookArgs, String> {
        PlaybookArgs::parse(&args.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn inventory_extra_vars_and_flags() {
        let p = parse(&[
            "-i",
            "web1,web2,",
            "-e",
            "a=1",
            "--extra-vars={\"b\": 2}",
            "--check",
        ])
        .unwrap();
        assert_eq!(p.inventory.as_deref(), Some("web1,web2,"));
        assert_eq!(
            p.passthrough,
            [
                "--extra-vars",
                "a=1",
                "--extra-vars",
                "{\"b\": 2}",
                "--check"
            ]
        );
        let p = parse(&[
            "--inventory=hosts.ini",
            "-t",
            "x",
            "--skip-tags",
            "y",
            "-vv",
        ])
        .unwrap();
        assert_eq!(p.inventory.as_deref(), Some("hosts.ini"));
        assert_eq!(p.passthrough, ["--tags", "x", "--skip-tags", "y", "-vv"]);
        let p = parse(&["--playbook", "web/site.yml", "--playbook=x.yml"]);
        assert!(p.unwrap_err().contains("twice"));
        let p = parse(&["--playbook=web/site.yml", "--check"]).unwrap();
        assert_eq!(p.playbook.as_deref(), Some("web/site.yml"));
        assert_eq!(p.passthrough, ["--check"]);
        assert_eq!(parse(&[]).unwrap(), PlaybookArgs::default());
    }

    #[test]
    fn bad_args_are_named() {
        assert!(parse(&["--become"]).unwrap_err().contains("`--become`"));
        assert!(parse(&["-e"]).unwrap_err().contains("needs a value"));
        assert!(
            parse(&["-i", "a,", "-i", "b,"])
                .unwrap_err()
                .contains("twice")
        );
        assert!(parse(&["-i", " "]).unwrap_err().contains("empty"));
        assert!(parse(&["--check=yes"]).unwrap_err().contains("unknown"));
        for bad in ["/etc/site.yml", "../site.yml", "a/../../b.yml", " "] {
            assert!(parse(&["--playbook", bad]).is_err(), "{bad}");
        }
    }
}

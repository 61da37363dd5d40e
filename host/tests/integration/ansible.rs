//! The `ansible` driver end to end: `drover run` with real ansible-core (installed by
//! `tests/setup.sh` into /opt/drover/ansible) against localhost over a local connection,
//! inside the process sandbox with a private /dev/shm.

use crate::support;
use std::path::Path;

use serde_json::Value;

use support::{Drover, node};

const ANSIBLE_PLAYBOOK: &str = "/opt/drover/ansible/bin/ansible-playbook";

/// A test environment, after checking that ansible is installed where the driver looks.
fn drover() -> Drover {
    assert!(
        Path::new(ANSIBLE_PLAYBOOK).is_file(),
        "{ANSIBLE_PLAYBOOK} is missing: run `bash tests/setup.sh` to install ansible-core"
    );
    Drover::new()
}

fn output<'a>(node: &'a Value, key: &str) -> &'a str {
    node["outputs"][key]
        .as_str()
        .unwrap_or_else(|| panic!("no output `{key}` in {node:#}"))
}

#[test]
fn a_playbook_file_changes_the_workspace_and_reports_counts() {
    let drover = drover();
    drover.write(
        "site.yml",
        r#"- name: greet
  hosts: all
  gather_facts: false
  tasks:
    - name: write the greeting
      ansible.builtin.copy:
        dest: "{{ lookup('env', 'DROVER_WORKSPACE') }}/greeting.txt"
        content: "{{ greeting }}\n"
    - name: write it again
      ansible.builtin.copy:
        dest: "{{ lookup('env', 'DROVER_WORKSPACE') }}/greeting.txt"
        content: "{{ greeting }}\n"
    - name: only on Tuesdays
      ansible.builtin.debug: {msg: never}
      when: false
"#,
    );
    let dag = drover.write(
        "dag.yaml",
        "name: greet\nnodes:\n  greet:\n    driver: ansible\n    artifact: site.yml\n    \
         args: [-e, '{\"greeting\": \"hello from ansible\"}', --diff]\n",
    );
    let (code, record) = drover.record(&["run", &dag, "--keep-workspaces"]);
    assert_eq!(code, 0, "{record:#}");
    let greet = node(&record, "greet");
    assert_eq!(greet["state"], "success", "{greet:#}");
    assert_eq!(output(greet, "changed"), "1", "{greet:#}");
    assert_eq!(output(greet, "ok"), "2", "{greet:#}");
    assert_eq!(output(greet, "skipped"), "1", "{greet:#}");
    assert_eq!(output(greet, "failed"), "0");
    assert_eq!(output(greet, "unreachable"), "0");
    let hosts: Value = serde_json::from_str(output(greet, "hosts")).unwrap();
    assert_eq!(hosts["localhost"]["changed"], 1, "{hosts:#}");
    let report: Value = serde_json::from_str(output(greet, "report")).unwrap();
    let statuses: Vec<(&str, &str)> = report
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["task"].as_str().unwrap(), r["status"].as_str().unwrap()))
        .collect();
    assert_eq!(
        statuses,
        [
            ("write the greeting", "changed"),
            ("write it again", "ok"),
            ("only on Tuesdays", "skipped")
        ]
    );
    let files = drover.files_in_runs("greeting.txt");
    assert_eq!(files.len(), 1, "{files:?}");
    assert_eq!(
        std::fs::read_to_string(&files[0]).unwrap(),
        "hello from ansible\n"
    );
}

#[test]
fn the_log_shows_each_task_and_host_result_live() {
    let drover = drover();
    let dag = drover.write(
        "dag.yaml",
        r#"name: log
nodes:
  play:
    driver: ansible
    artifact: |
      - hosts: all
        gather_facts: false
        tasks:
          - name: say hello
            ansible.builtin.command: echo hello
"#,
    );
    let out = drover.run(&["run", &dag]);
    let text = format!("{}{}", support::stdout(&out), support::stderr(&out));
    assert!(out.status.success(), "{text}");
    for line in [
        "TASK [say hello]",
        "changed: [localhost] say hello",
        "PLAY RECAP",
    ] {
        assert!(text.contains(line), "`{line}` missing from:\n{text}");
    }
}

#[test]
fn a_failing_task_fails_the_node_naming_the_task_and_message() {
    let drover = drover();
    let dag = drover.write(
        "dag.yaml",
        r#"name: fail
nodes:
  play:
    driver: ansible
    artifact: |
      - hosts: all
        gather_facts: false
        tasks:
          - name: tolerated
            ansible.builtin.command: /bin/false
            ignore_errors: true
          - name: break on purpose
            ansible.builtin.fail: {msg: the disk is full}
          - name: never reached
            ansible.builtin.debug: {msg: no}
  after:
    driver: shell
    needs: [play]
    artifact: echo should not run
"#,
    );
    let (code, record) = drover.record(&["run", &dag]);
    assert_eq!(code, 1, "{record:#}");
    let play = node(&record, "play");
    assert_eq!(play["state"], "failure", "{play:#}");
    let error = play["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("task `break on purpose` failed on localhost: the disk is full"),
        "{play:#}"
    );
    assert_eq!(
        play["exit_code"], 2,
        "ansible-playbook's code for failed hosts"
    );
    assert_eq!(node(&record, "after")["state"], "not-runnable");
}

#[test]
fn a_broken_playbook_fails_with_ansibles_own_error() {
    let drover = drover();
    let dag = drover.write(
        "dag.yaml",
        r#"name: broken
nodes:
  play:
    driver: ansible
    artifact: |
      - hosts: all
        tasks:
          - name: unclosed
            ansible.builtin.copy: {dest: x
"#,
    );
    let (code, record) = drover.record(&["run", &dag]);
    assert_eq!(code, 1, "{record:#}");
    let play = node(&record, "play");
    assert_eq!(play["state"], "failure", "{play:#}");
    let error = play["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("ansible-playbook failed (exit code 4, a syntax or parse error)")
            && error.contains("YAML parsing failed")
            && error.contains("playbook.yml"),
        "{play:#}"
    );
}

#[test]
fn unknown_args_and_missing_playbooks_are_refused_before_running() {
    let drover = drover();
    let dag = drover.write(
        "dag.yaml",
        "name: bad\nnodes:\n  a:\n    driver: ansible\n    artifact: missing.yml\n  \
         b:\n    driver: ansible\n    artifact: '- hosts: all'\n    args: [--become]\n",
    );
    let out = drover.run(&["run", &dag]);
    assert_eq!(out.status.code(), Some(2));
    let err = support::stderr(&out);
    assert!(
        err.contains("missing.yml") && err.contains("does not exist"),
        "{err}"
    );
    assert!(err.contains("`--become`"), "{err}");
}

#[test]
fn set_stats_and_set_fact_become_outputs_for_downstream_nodes() {
    let drover = drover();
    let dag = drover.write(
        "dag.yaml",
        r#"name: stats
nodes:
  deploy:
    driver: ansible
    artifact: |
      - hosts: all
        gather_facts: false
        tasks:
          - ansible.builtin.set_stats:
              data: {version: "1.4.2", replicas: 3}
          - ansible.builtin.set_fact:
              endpoint: "http://{{ inventory_hostname }}:8080"
              unlisted: not an output
    outputs: [version, replicas, endpoint]
  use:
    driver: shell
    needs: [deploy]
    artifact: 'echo "seen=${{ nodes.deploy.outputs.version }} at ${{ nodes.deploy.outputs.endpoint }} x${{ nodes.deploy.outputs.replicas }}"'
    outputs: [seen]
"#,
    );
    let (code, record) = drover.record(&["run", &dag]);
    assert_eq!(code, 0, "{record:#}");
    let deploy = node(&record, "deploy");
    assert_eq!(output(deploy, "version"), "1.4.2");
    assert_eq!(output(deploy, "replicas"), "3");
    assert_eq!(output(deploy, "endpoint"), "http://localhost:8080");
    assert!(deploy["outputs"].get("unlisted").is_none(), "{deploy:#}");
    assert_eq!(
        output(node(&record, "use"), "seen"),
        "1.4.2 at http://localhost:8080 x3"
    );
}

/// The one file of that name a run left in a workspace, and its contents.
fn workspace_file(drover: &Drover, name: &str) -> String {
    let files = drover.files_in_runs(name);
    assert_eq!(files.len(), 1, "{name}: {files:?}");
    std::fs::read_to_string(&files[0]).unwrap()
}

#[test]
fn relative_paths_in_tasks_mean_the_workspace_not_the_playbooks_folder() {
    let drover = drover();
    drover.write(
        "site.yml",
        r#"- hosts: all
  gather_facts: false
  tasks:
    - ansible.builtin.copy: {dest: ./marker.txt, content: "marked\n"}
    - ansible.builtin.command: pwd
      register: where
    - ansible.builtin.set_stats:
        data: {cwd: "{{ where.stdout }}"}
"#,
    );
    let dag = drover.write(
        "dag.yaml",
        "name: marker\nnodes:\n  mark:\n    driver: ansible\n    artifact: site.yml\n    \
         outputs: [cwd]\n",
    );
    let (code, record) = drover.record(&["run", &dag, "--keep-workspaces"]);
    assert_eq!(code, 0, "{record:#}");
    assert_eq!(workspace_file(&drover, "marker.txt"), "marked\n");
    let marker = &drover.files_in_runs("marker.txt")[0];
    let workspace = marker.parent().unwrap().canonicalize().unwrap();
    let mark = node(&record, "mark");
    assert_eq!(
        Path::new(output(mark, "cwd")).canonicalize().unwrap(),
        workspace,
        "{mark:#}"
    );
    assert!(!drover.path("marker.txt").exists());
}

/// An ansible project beside the DAG: a playbook with a role, a template and a file next
/// to it, each writing into the workspace by a relative path.
fn write_project(drover: &Drover, folder: &str, playbook: &str) {
    for dir in [
        "roles/greet/tasks",
        "roles/greet/templates",
        "templates",
        "files",
    ] {
        std::fs::create_dir_all(drover.path(&format!("{folder}/{dir}"))).unwrap();
    }
    drover.write(
        &format!("{folder}/{playbook}"),
        r#"- hosts: all
  gather_facts: false
  vars: {who: world}
  roles: [greet]
  tasks:
    - ansible.builtin.template: {src: hello.j2, dest: ./hello.txt}
    - ansible.builtin.copy: {src: notes.txt, dest: ./notes.txt}
    - ansible.builtin.copy: {dest: ./marker.txt, content: "marked\n"}
"#,
    );
    drover.write(&format!("{folder}/templates/hello.j2"), "hello {{ who }}\n");
    drover.write(&format!("{folder}/files/notes.txt"), "from files/\n");
    drover.write(
        &format!("{folder}/roles/greet/tasks/main.yml"),
        "- ansible.builtin.template: {src: role.j2, dest: ./role.txt}\n",
    );
    drover.write(
        &format!("{folder}/roles/greet/templates/role.j2"),
        "role greets {{ who }}\n",
    );
}

#[test]
fn a_project_folder_gives_roles_templates_and_files_beside_the_playbook() {
    let drover = drover();
    write_project(&drover, "deploy", "web.yml");
    let dag = drover.write(
        "dag.yaml",
        "name: project\nnodes:\n  deploy:\n    driver: ansible\n    artifact: deploy\n    \
         args: [--playbook, web.yml]\n",
    );
    let (code, record) = drover.record(&["run", &dag, "--keep-workspaces"]);
    assert_eq!(code, 0, "{record:#}");
    assert_eq!(output(node(&record, "deploy"), "changed"), "4");
    assert_eq!(workspace_file(&drover, "hello.txt"), "hello world\n");
    assert_eq!(workspace_file(&drover, "role.txt"), "role greets world\n");
    assert_eq!(workspace_file(&drover, "notes.txt"), "from files/\n");
    assert_eq!(workspace_file(&drover, "marker.txt"), "marked\n");
    // The project stays as it was: read-only to the node.
    assert!(!drover.path("deploy/hello.txt").exists());
}

#[test]
fn a_role_beside_a_playbook_file_fails_saying_how_to_make_it_readable() {
    let drover = drover();
    write_project(&drover, "deploy", "site.yml");
    let dag = drover.write(
        "dag.yaml",
        "name: file\nnodes:\n  deploy:\n    driver: ansible\n    artifact: deploy/site.yml\n",
    );
    let (code, record) = drover.record(&["run", &dag]);
    assert_eq!(code, 1, "{record:#}");
    let error = node(&record, "deploy")["error"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(
        error.contains("Permission denied") && error.contains("name its folder as the artifact"),
        "{record:#}"
    );
}

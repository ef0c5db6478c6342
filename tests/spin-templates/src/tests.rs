use super::*;

/// Writes a template with `manifest` as its spin-template.toml and `files` under content/ (or
/// metadata/snippets/ for paths starting with `snippets/`).
fn template(
    manifest: &str,
    files: &[(&str, &str)],
) -> (tempfile::TempDir, anyhow::Result<Template>) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("metadata/snippets")).unwrap();
    std::fs::create_dir_all(dir.path().join("content")).unwrap();
    std::fs::write(dir.path().join("metadata/spin-template.toml"), manifest).unwrap();
    for (path, text) in files {
        let target = match path.strip_prefix("snippets/") {
            Some(snippet) => dir.path().join("metadata/snippets").join(snippet),
            None => dir.path().join("content").join(path),
        };
        std::fs::create_dir_all(target.parent().unwrap()).unwrap();
        std::fs::write(target, text).unwrap();
    }
    let loaded = Template::load(dir.path());
    (dir, loaded)
}

const MINIMAL: &str = "manifest_version = \"1\"\nid = \"t\"\n";

fn render_new(template: &Template, values: &[(&str, &str)]) -> anyhow::Result<tempfile::TempDir> {
    let out = tempfile::tempdir().unwrap();
    template.new_application("My Cool-project", out.path(), values)?;
    Ok(out)
}

#[test]
fn spins_filters_and_values_render() {
    let (_dir, loaded) = template(
        MINIMAL,
        &[(
            "out.txt",
            "{{project-name | kebab_case}} {{project-name | snake_case}} {{project-name | pascal_case}} \
             {{ \"acme.pet-store\" | dotted_pascal_case }} {{ \"/api\" | http_wildcard }} {{ \"/api/\" | http_wildcard }} \
             {{ authors }} {{ project-name | upcase }}",
        )],
    );
    let out = render_new(&loaded.unwrap(), &[]).unwrap();
    assert_eq!(
        std::fs::read_to_string(out.path().join("out.txt")).unwrap(),
        format!(
            "my-cool-project my_cool_project MyCoolProject Acme.PetStore /api/... /api/... {DEFAULT_AUTHORS} MY COOL-PROJECT"
        )
    );
}

#[test]
fn tmpl_suffixes_are_stripped_and_paths_kept() {
    let (_dir, loaded) = template(
        MINIMAL,
        &[
            ("Cargo.toml.tmpl", "name = \"{{project-name}}\""),
            ("src/lib.rs", "// x"),
        ],
    );
    let out = render_new(&loaded.unwrap(), &[]).unwrap();
    assert!(out.path().join("Cargo.toml").exists());
    assert!(!out.path().join("Cargo.toml.tmpl").exists());
    assert!(out.path().join("src/lib.rs").exists());
}

#[test]
fn an_unknown_filter_is_an_error() {
    let (_dir, loaded) = template(MINIMAL, &[("a.txt", "{{ project-name | shouty_case }}")]);
    let error = render_new(&loaded.unwrap(), &[]).unwrap_err();
    assert!(format!("{error:#}").contains("shouty_case"), "{error:#}");
}

#[test]
fn a_parameter_without_value_or_default_is_an_error() {
    let manifest =
        format!("{MINIMAL}[parameters]\nchannel = {{ type = \"string\", prompt = \"Channel\" }}\n");
    let (_dir, loaded) = template(&manifest, &[("a.txt", "{{channel}}")]);
    let error = render_new(&loaded.unwrap(), &[]).unwrap_err();
    assert_eq!(
        error.to_string(),
        "missing a value for parameter `channel`, which has no default"
    );
}

#[test]
fn a_template_variable_that_is_not_a_parameter_is_an_error() {
    let (_dir, loaded) = template(MINIMAL, &[("a.txt", "{{ not-a-parameter }}")]);
    assert!(render_new(&loaded.unwrap(), &[]).is_err());
}

#[test]
fn a_value_for_an_undeclared_parameter_is_an_error() {
    let (_dir, loaded) = template(MINIMAL, &[]);
    let error = render_new(&loaded.unwrap(), &[("nope", "1")]).unwrap_err();
    assert_eq!(
        error.to_string(),
        "Template does not contain a parameter named 'nope'"
    );
}

#[test]
fn an_unknown_manifest_field_or_version_is_an_error() {
    let (_dir, loaded) = template(&format!("{MINIMAL}colour = \"blue\"\n"), &[]);
    assert!(format!("{:#}", loaded.err().unwrap()).contains("unknown field `colour`"));
    let (_dir, loaded) = template("manifest_version = \"2\"\nid = \"t\"\n", &[]);
    assert!(loaded.is_err());
    let bad_parameter = format!(
        "{MINIMAL}[parameters]\nx = {{ type = \"string\", prompt = \"x\", colour = \"red\" }}\n"
    );
    let (_dir, loaded) = template(&bad_parameter, &[]);
    assert!(format!("{:#}", loaded.err().unwrap()).contains("unknown field `colour`"));
}

#[test]
fn values_must_match_their_pattern() {
    let manifest = format!(
        "{MINIMAL}[parameters]\nn = {{ type = \"string\", prompt = \"n\", default = \"5\", pattern = \"[0-9]+\" }}\n"
    );
    let (_dir, loaded) = template(&manifest, &[("a.txt", "{{n}}")]);
    let loaded = loaded.unwrap();
    assert!(render_new(&loaded, &[("n", "42")]).is_ok());
    assert_eq!(
        render_new(&loaded, &[("n", "4x")]).unwrap_err().to_string(),
        "n: '4x' does not match the pattern [0-9]+"
    );
}

#[test]
fn add_appends_snippets_and_skips_what_a_condition_says() {
    let manifest = format!(
        "{MINIMAL}[parameters]\naddress = {{ type = \"string\", prompt = \"a\" }}\n\
         [add_component]\nskip_files = [\"spin.toml\"]\n\
         [add_component.snippets]\ncomponent = \"component.txt\"\napplication_trigger = \"trigger.txt\"\n\
         [add_component.conditions.exists]\ncondition = {{ manifest_entry_exists = \"application.trigger.redis\" }}\n\
         skip_parameters = [\"address\"]\nskip_snippets = [\"application_trigger\"]\n"
    );
    let (_dir, loaded) = template(
        &manifest,
        &[
            ("spin.toml", "never copied"),
            ("src/lib.rs", "// {{project-name}}"),
            (
                "snippets/component.txt",
                "[component.{{project-name | kebab_case}}]\nsource = \"{{ output-path }}/x.wasm\"\n",
            ),
            (
                "snippets/trigger.txt",
                "[application.trigger.redis]\naddress = \"{{address}}\"\n",
            ),
        ],
    );
    let loaded = loaded.unwrap();
    let app = tempfile::tempdir().unwrap();
    let spin_toml = app.path().join("spin.toml");

    std::fs::write(&spin_toml, "[application]\nname = \"a\"\n").unwrap();
    loaded
        .add_component("First", &spin_toml, "first", &[("address", "redis://r")])
        .unwrap();
    let text = std::fs::read_to_string(&spin_toml).unwrap();
    assert!(
        text.contains("[application.trigger.redis]\naddress = \"redis://r\""),
        "{text}"
    );
    assert!(
        text.contains("[component.first]\nsource = \"first/x.wasm\""),
        "{text}"
    );
    assert_eq!(
        std::fs::read_to_string(app.path().join("first/src/lib.rs")).unwrap(),
        "// First"
    );
    assert!(!app.path().join("first/spin.toml").exists(), "skip_files");

    // Now the entry exists: the trigger snippet and the address parameter are skipped.
    loaded
        .add_component("Second", &spin_toml, "second", &[])
        .unwrap();
    let text = std::fs::read_to_string(&spin_toml).unwrap();
    assert_eq!(
        text.matches("[application.trigger.redis]").count(),
        1,
        "{text}"
    );
    assert!(text.contains("[component.second]"), "{text}");
    toml::from_str::<toml::Table>(&text).expect("the result is still valid TOML");
}

#[test]
fn the_projects_templates_load_and_reject_nonsense() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../templates");
    let timer = Template::load(root.join("timer-rust")).unwrap();
    let redis = Template::load(root.join("redis-component-rust")).unwrap();
    assert_eq!(
        (timer.id(), redis.id()),
        ("timer-rust", "redis-component-rust")
    );
    for nonsense in [
        "0",
        "-1",
        "ten",
        "1.5",
        "10s",
        "",
        "* * *",
        "0 0 9 * * * * 2026",
    ] {
        let out = tempfile::tempdir().unwrap();
        assert!(
            timer
                .new_application("t", out.path(), &[("schedule", nonsense)])
                .is_err(),
            "schedule {nonsense:?} must be rejected"
        );
    }
    let out = tempfile::tempdir().unwrap();
    let error = redis
        .new_application(
            "r",
            out.path(),
            &[
                ("redis-channel", "jobs"),
                ("redis-address", "localhost:6379"),
            ],
        )
        .unwrap_err();
    assert!(
        error
            .to_string()
            .starts_with("redis-address: 'localhost:6379' does not match")
    );
}

//! Profile parsing: defaults, errors with file:line:field, --set, the
//! resolved YAML, and every bundled profile.

use super::*;
use std::path::Path;

const MINIMAL: &str = "\
name: web
sandbox: {}
target: {service: web-service}
rollout:
  deployment: web-server
  steps:
    - sleep: 1s
";

fn parse_str(text: &str, sets: &[&str]) -> Result<Profile, ProfileError> {
    let sets: Vec<String> = sets.iter().map(|s| s.to_string()).collect();
    parse(text, Path::new("p.yaml"), &sets)
}

fn err(text: &str, sets: &[&str]) -> String {
    parse_str(text, sets).unwrap_err().to_string()
}

#[test]
fn secrets_in_headers_are_redacted_for_the_run_directory_and_plain_ones_kept() {
    let mut p = parse_str(MINIMAL, &[]).unwrap();
    p.target.headers = vec![
        "Authorization: Bearer s3cr3t".into(),
        "X-Api-Key: k".into(),
        "Host: web.example.com".into(),
    ];
    let yaml = p.redacted().resolved_yaml();
    assert!(
        !yaml.contains("s3cr3t") && !yaml.contains("X-Api-Key: k"),
        "{yaml}"
    );
    assert!(yaml.contains("Host: web.example.com"), "{yaml}");
    assert!(
        yaml.contains(&format!("Authorization: {REDACTED}")),
        "{yaml}"
    );
    // Still a profile baton reads.
    parse(&yaml, Path::new("r.yaml"), &[]).unwrap();
}

#[test]
fn a_minimal_profile_gets_every_default() {
    let p = parse_str(MINIMAL, &[]).unwrap();
    assert_eq!(p.cluster.namespace, None);
    assert_eq!(p.load.rate, 200.0);
    assert_eq!(p.load.timeout, std::time::Duration::from_secs(2));
    assert!(!p.load.keepalive);
    assert_eq!(p.target.expect_status, vec![200]);
    assert_eq!(p.thresholds.max_failed, Some(0));
    assert!(p.thresholds.rollout_must_complete);
    assert_eq!(
        p.sandbox.unwrap().propagation_delay,
        std::time::Duration::from_secs(1)
    );
}

#[test]
fn the_sandbox_section_sets_every_cluster_knob_a_scenario_needs() {
    let text = MINIMAL.replace(
        "sandbox: {}",
        "sandbox: {propagation_delay: 1500ms, propagation_jitter: 300ms, backoff_base: 200ms, backoff_max: 2s, bookmark_interval: 1s}",
    );
    let s = parse_str(&text, &[]).unwrap().sandbox.unwrap();
    let ms = std::time::Duration::from_millis;
    assert_eq!(
        (
            s.propagation_delay,
            s.propagation_jitter,
            s.backoff_base,
            s.backoff_max,
            s.bookmark_interval
        ),
        (ms(1500), ms(300), ms(200), ms(2000), ms(1000))
    );
}

#[test]
fn sandbox_ingress_is_off_unless_asked_and_survives_the_resolved_yaml() {
    let p = parse_str(MINIMAL, &[]).unwrap();
    assert!(!p.sandbox.as_ref().unwrap().ingress);
    let on = parse_str(
        &MINIMAL.replace("sandbox: {}", "sandbox: {ingress: true}"),
        &[],
    )
    .unwrap();
    assert!(on.sandbox.as_ref().unwrap().ingress);
    let again = parse(&on.resolved_yaml(), Path::new("r.yaml"), &[]).unwrap();
    assert!(again.sandbox.unwrap().ingress);
    let e = err(
        &MINIMAL.replace("sandbox: {}", "sandbox: {ingress: yes please}"),
        &[],
    );
    assert!(e.contains("sandbox.ingress"), "{e}");
}

#[test]
fn the_propagation_allowance_is_the_profiles_else_the_sandboxs_lag_else_the_default() {
    let ms = std::time::Duration::from_millis;
    let sandboxed = MINIMAL.replace(
        "sandbox: {}",
        "sandbox: {propagation_delay: 1500ms, propagation_jitter: 300ms}",
    );
    let p = parse_str(&sandboxed, &[]).unwrap();
    let on_sandbox = p.attribution.allowance(p.sandbox.as_ref());
    assert_eq!(on_sandbox.0, ms(2300));
    assert!(on_sandbox.1.contains("sandbox"), "{}", on_sandbox.1);
    // The same profile run against a real cluster.
    let on_cluster = p.attribution.allowance(None);
    assert_eq!(on_cluster.0, ms(2000));
    assert!(on_cluster.1.contains("real cluster"), "{}", on_cluster.1);
    let set = parse_str(&sandboxed, &["attribution.propagation_allowance=3s"]).unwrap();
    assert_eq!(set.attribution.allowance(set.sandbox.as_ref()).0, ms(3000));
    assert_eq!(set.attribution.allowance(None).0, ms(3000));
}

#[test]
fn an_unknown_field_names_file_line_and_field() {
    let text = MINIMAL.replace(
        "target: {service: web-service}",
        "target: {service: s, urll: x}",
    );
    let e = err(&text, &[]);
    assert!(e.starts_with("p.yaml:3:"), "{e}");
    assert!(e.contains("target.urll") || e.contains("urll"), "{e}");
    assert!(e.contains("unknown field"), "{e}");
}

#[test]
fn a_value_of_the_wrong_type_names_its_field() {
    let text = format!("{MINIMAL}load: {{rate: fast}}\n");
    let e = err(&text, &[]);
    assert!(e.starts_with("p.yaml:8:"), "{e}");
    assert!(e.contains("load.rate"), "{e}");
}

#[test]
fn a_bad_duration_names_its_field() {
    let text = format!("{MINIMAL}load: {{timeout: soon}}\n");
    let e = err(&text, &[]);
    assert!(e.contains("load.timeout"), "{e}");
}

#[test]
fn checks_across_fields_name_the_field() {
    let e = err(MINIMAL, &["load.rate=0"]);
    assert!(e.contains("load.rate") && e.contains("> 0"), "{e}");
    let e = err(MINIMAL, &["thresholds.max_error_rate=5"]);
    assert!(e.contains("thresholds.max_error_rate"), "{e}");
    let e = err(MINIMAL, &["target.backend_from.body_regex=(unclosed"]);
    assert!(e.contains("target.backend_from"), "{e}");
    let e = err(
        &MINIMAL.replace(
            "target: {service: web-service}",
            "target: {service: web-service, also_watch: [{deployment: web-server, service: v1}]}",
        ),
        &[],
    );
    assert!(
        e.contains("target.also_watch[0].deployment") && e.contains("already watched"),
        "{e}"
    );
    let real = MINIMAL.replace("sandbox: {}\n", "");
    let e = err(&real, &[]);
    assert!(
        e.contains("target.url") && e.contains("real cluster"),
        "{e}"
    );
}

#[test]
fn set_overrides_apply_before_validation() {
    let p = parse_str(MINIMAL, &["load.rate=750", "thresholds.max_failed=3"]).unwrap();
    assert_eq!(p.load.rate, 750.0);
    assert_eq!(p.thresholds.max_failed, Some(3));
    let e = err(MINIMAL, &["load.rat=750"]);
    assert!(e.contains("(after --set)") && e.contains("rat"), "{e}");
    let e = err(MINIMAL, &["load.rate"]);
    assert!(e.contains("expected path=value"), "{e}");
}

#[test]
fn the_resolved_yaml_parses_back_to_the_same_profile() {
    let p = parse_str(MINIMAL, &[]).unwrap();
    let again = parse_str(&p.resolved_yaml(), &[]).unwrap();
    assert_eq!(p, again);
}

#[test]
fn every_bundled_profile_is_valid() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("profiles");
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "yaml") {
            let loaded = load(&path, &[]).unwrap_or_else(|e| panic!("{e}"));
            for m in loaded.profile.sandbox.iter().flat_map(|s| &s.manifests) {
                assert!(
                    loaded.base_dir.join(m).is_file(),
                    "{}: {}",
                    path.display(),
                    m.display()
                );
            }
            n += 1;
        }
    }
    assert!(n >= 2, "found {n} profiles");
}

#[test]
fn tls_settings_parse_survive_the_resolved_yaml_and_can_be_set() {
    let text = MINIMAL.replace(
        "target: {service: web-service}",
        "target: {service: web-service, url: 'https://web.example.com/', ca_file: certs/ca.pem}",
    );
    let p = parse_str(&text, &["target.insecure_skip_tls_verify=true"]).unwrap();
    assert_eq!(p.target.ca_file.as_deref(), Some(Path::new("certs/ca.pem")));
    assert!(p.target.insecure_skip_tls_verify);
    let again = parse_str(&p.resolved_yaml(), &[]).unwrap();
    assert_eq!(again.target.ca_file, p.target.ca_file);
    assert!(again.target.insecure_skip_tls_verify);
    // Off and absent by default, and left out of the resolved YAML then.
    let plain = parse_str(MINIMAL, &[]).unwrap();
    assert!(plain.target.ca_file.is_none() && !plain.target.insecure_skip_tls_verify);
    assert!(!plain.resolved_yaml().contains("tls"));
}

//! Extism plugins, unmodified, under polyload, checked against the
//! `extism` crate running the same plugin: input, output, errors, config,
//! variables, memory limits, a host function (bound, in polyload, to a Lua
//! definition) and a time limit.

use polyload::{Error, Runtime, Value};
use polyload_outside::Scratch;
use polyload_wasm::WasmLoader;
use serde_json::json;
use std::time::Duration;

const PLUGIN: &str = include_str!("guests/plugin.wat");

#[path = "guests/extism_host.rs"]
mod extism_host;

/// Memory limit for both hosts: 64 pages.
const PAGES: u32 = 64;

fn polyload_host(s: &Scratch) -> Runtime {
    let rt = s
        .builder()
        .loader(WasmLoader::new())
        .loader(polyload_lua::LuaLoader::new())
        .build()
        .unwrap();
    let strs = s.bundles().join("strs");
    std::fs::create_dir_all(&strs).unwrap();
    std::fs::write(
        strs.join("manifest.toml"),
        "id = \"strs\"\nversion = \"0.1.0\"\nloader = \"lua\"\nfile = \"strs.lua\"\nabi = \"1.0\"\n[exports]\ndouble = \"fn(str) -> str\"\n",
    )
    .unwrap();
    std::fs::write(
        strs.join("strs.lua"),
        "local M = {}\nfunction M.double(s) return s .. s end\nreturn M\n",
    )
    .unwrap();
    rt.load_bundle(&strs).unwrap();
    let dir = s.bundles().join("plug");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("plugin.wasm"), wat::parse_str(PLUGIN).unwrap()).unwrap();
    std::fs::write(
        dir.join("manifest.toml"),
        format!(
            r#"id = "plug"
version = "0.1.0"
loader = "wasm"
file = "plugin.wasm"
abi = "1.0"

[exports]
count_vowels = "fn(str) -> json"
fail = "fn(str) -> str"
greet = "fn(str) -> str"
count_calls = "fn() -> str"
hog = "fn() -> str"
grow_linear = "fn() -> str"
twice = "fn(str) -> str"
spin = "fn() -> str"

[wasm]
abi = "extism"
max_memory = "{PAGES} pages"
timeout_ms = 200

[wasm.config]
greeting = "Hello"

[wasm.imports]
"extism:host/user.double_it" = "strs.double"
"#
        ),
    )
    .unwrap();
    rt.load_bundle(&dir).unwrap();
    rt
}

fn extism_host() -> extism::Plugin {
    let manifest = extism::Manifest::new([extism::Wasm::data(wat::parse_str(PLUGIN).unwrap())])
        .with_config_key("greeting", "Hello")
        .with_memory_max(PAGES)
        .with_timeout(Duration::from_millis(200));
    let double = extism_host::double_it();
    extism::Plugin::new(&manifest, [double], false).unwrap()
}

/// What a call gave: the output, or the plugin's error message.
#[derive(Debug, PartialEq)]
enum Outcome {
    Out(String),
    Err(String),
}

fn ours(rt: &Runtime, name: &str, input: Option<&str>) -> Outcome {
    let args: Vec<Value> = input.map(Value::from).into_iter().collect();
    match rt.call(&format!("plug.{name}"), &args) {
        Ok(Value::Str(s)) => Outcome::Out(s),
        Ok(Value::Json(j)) => Outcome::Out(j.to_string()),
        Ok(other) => panic!("unexpected {other:?}"),
        Err(Error::Guest { message, .. }) => Outcome::Err(message),
        Err(e) => panic!("unexpected {e}"),
    }
}

fn theirs(p: &mut extism::Plugin, name: &str, input: Option<&str>) -> Outcome {
    match p.call::<&str, &str>(name, input.unwrap_or("")) {
        Ok(s) => {
            let s = s.to_string();
            // Extism hands back bytes; polyload parses `json` results.
            match serde_json::from_str::<serde_json::Value>(&s) {
                Ok(j) if name == "count_vowels" => Outcome::Out(j.to_string()),
                _ => Outcome::Out(s),
            }
        }
        Err(e) => Outcome::Err(e.root_cause().to_string()),
    }
}

#[test]
fn an_unmodified_plugin_behaves_the_same_under_both_hosts() {
    let s = Scratch::new();
    let rt = polyload_host(&s);
    let mut ext = extism_host();
    let text_4k = "The quick brown fox jumps over the lazy dog. ".repeat(92);
    let cases: Vec<(&str, Option<&str>)> = vec![
        ("count_vowels", Some("hello world")),
        ("count_vowels", Some("")),
        ("count_vowels", Some("aeiouAEIOU xyz 1234567")),
        ("count_vowels", Some(text_4k.as_str())),
        ("greet", Some("Ada")),
        ("fail", Some("x")),
        ("count_calls", None),
        ("count_calls", None),
        ("count_calls", None),
        ("twice", Some("ab")),
    ];
    for (name, input) in cases {
        let a = ours(&rt, name, input);
        let b = theirs(&mut ext, name, input);
        assert_eq!(a, b, "{name}({input:?})");
    }
    // Limits: both hosts stop the call with an error (in their own words:
    // polyload names the limit, extism says `oom` and `timeout`), and the
    // plugin works afterwards.
    for (name, ours_says, theirs_says) in [
        (
            "hog",
            "out of memory: alloc(65536) would pass max_memory",
            "oom",
        ),
        ("grow_linear", "out of memory: growing linear memory", "oom"),
        ("spin", "timed out after 200 ms", "timeout"),
    ] {
        match (ours(&rt, name, None), theirs(&mut ext, name, None)) {
            (Outcome::Err(a), Outcome::Err(b)) => {
                assert!(a.contains(ours_says), "{a}");
                assert_eq!(b, theirs_says);
            }
            other => panic!("{name}: {other:?}"),
        }
        let input = Some("after the limit");
        assert_eq!(ours(&rt, "greet", input), theirs(&mut ext, "greet", input));
        assert_eq!(
            ours(&rt, "count_calls", None),
            theirs(&mut ext, "count_calls", None)
        );
    }
}

#[test]
fn input_output_errors_config_and_vars() {
    let s = Scratch::new();
    let rt = polyload_host(&s);
    assert_eq!(
        rt.call("plug.count_vowels", &[Value::from("hello world")])
            .unwrap(),
        Value::Json(json!({"count": 3}))
    );
    assert_eq!(
        rt.call("plug.greet", &[Value::from("Ada")]).unwrap(),
        Value::from("Hello, Ada!")
    );
    let e = rt.call("plug.fail", &[Value::from("")]).unwrap_err();
    assert_eq!(
        e.to_string(),
        "`plug.fail` failed: plugin failed on purpose"
    );
    for n in 1..=3 {
        assert_eq!(
            rt.call("plug.count_calls", &[]).unwrap(),
            Value::from(n.to_string().as_str()),
            "variables persist across calls"
        );
    }
    // The host function is a Lua definition.
    assert_eq!(
        rt.call("plug.twice", &[Value::from("la")]).unwrap(),
        Value::from("lala")
    );
}

#[test]
fn limits_hold_for_plugins() {
    let s = Scratch::new();
    let rt = polyload_host(&s);
    assert_eq!(rt.call("plug.count_calls", &[]).unwrap(), Value::from("1"));
    let e = rt.call("plug.hog", &[]).unwrap_err();
    assert_eq!(
        e.to_string(),
        "`plug.hog` failed: hog: out of memory: alloc(65536) would pass max_memory (4194304 bytes, linear memory included)"
    );
    let e = rt.call("plug.grow_linear", &[]).unwrap_err();
    assert!(
        e.to_string().starts_with(
            "`plug.grow_linear` failed: grow_linear: out of memory: growing linear memory to "
        ),
        "{e}"
    );
    let e = rt.call("plug.spin", &[]).unwrap_err();
    assert_eq!(
        e.to_string(),
        "`plug.spin` failed: spin: timed out after 200 ms (timeout_ms)"
    );
    // Each trap recreated the instance; the plugin's variables outlive
    // instances (as in extism).
    assert_eq!(
        rt.call("plug.greet", &[Value::from("again")]).unwrap(),
        Value::from("Hello, again!")
    );
    assert_eq!(rt.call("plug.count_calls", &[]).unwrap(), Value::from("2"));
}

#[test]
fn a_plugin_that_needs_a_host_function_nobody_bound_is_refused() {
    let s = Scratch::new();
    let rt = s.builder().loader(WasmLoader::new()).build().unwrap();
    let dir = s.bundles().join("lonely");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("plugin.wat"), PLUGIN).unwrap();
    std::fs::write(
        dir.join("manifest.toml"),
        "id = \"lonely\"\nversion = \"0.1.0\"\nloader = \"wasm\"\nfile = \"plugin.wat\"\nabi = \"1.0\"\n[wasm]\nabi = \"extism\"\n",
    )
    .unwrap();
    let e = rt.load_bundle(&dir).unwrap_err().to_string();
    assert!(
        e.contains("the module imports `extism:host/user.double_it`, which nothing provides; bind it to a definition in `[wasm.imports]`"),
        "{e}"
    );
}

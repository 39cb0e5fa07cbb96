//! Calls `add(i64, i64)` in Lua N times, through polyload's typed handle or
//! straight through mlua, for counting instructions per call with callgrind
//! (`valgrind --tool=callgrind target/release/examples/lua_loop typed 100000`).

use polyload::Runtime;
use std::hint::black_box;

const ADD: &str = "return { add = function(a, b) return a + b end }";

fn main() {
    let mut argv = std::env::args().skip(1);
    let path = argv.next().unwrap_or_else(|| "typed".into());
    let n: i64 = argv.next().and_then(|s| s.parse().ok()).unwrap_or(1000);
    let tmp = tempfile::tempdir().expect("temporary directory");
    let dir = tmp.path().join("looplua");
    std::fs::create_dir_all(&dir).expect("bundle directory");
    std::fs::write(
        dir.join("manifest.toml"),
        "id = \"looplua\"\nversion = \"0.1.0\"\nloader = \"lua\"\nfile = \"main.lua\"\nabi = \"1.0\"\n[exports]\nadd = \"fn(i64, i64) -> i64\"\n",
    )
    .expect("manifest");
    std::fs::write(dir.join("main.lua"), ADD).expect("source");
    let rt = Runtime::builder()
        .cache_dir(tmp.path().join("cache"))
        .loader(polyload_lua::LuaLoader::new())
        .build()
        .expect("runtime");
    rt.load_bundle(&dir).expect("load");
    let add = rt
        .function::<extern "C" fn(i64, i64) -> i64>("looplua.add")
        .expect("handle");
    let lua = mlua::Lua::new();
    let table: mlua::Table = lua.load(ADD).eval().expect("chunk");
    let f: mlua::Function = table.get("add").expect("add");
    let mut sum = 0i64;
    match path.as_str() {
        "typed" => {
            for i in 0..n {
                sum += add.call((black_box(i), 40)).expect("call");
            }
        }
        "direct" => {
            for i in 0..n {
                sum += f.call::<i64>((black_box(i), 40i64)).expect("call");
            }
        }
        other => panic!("unknown path {other}: typed, direct"),
    }
    black_box(sum);
}

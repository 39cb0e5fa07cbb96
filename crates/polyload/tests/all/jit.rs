//! JIT-compiled code (cranelift-jit) calling functions resolved through a
//! `SymbolProvider` chain: one from a bundle library, one from libm.

use crate::support::{c_source, cc_shared, Scratch};
use cranelift_codegen::ir::{types, AbiParam, InstBuilder};
use cranelift_codegen::settings::{self, Configurable};
use cranelift_frontend::{FunctionBuilder, FunctionBuilderContext};
use cranelift_jit::{JITBuilder, JITModule};
use cranelift_module::{default_libcall_names, Linkage, Module};
use polyload::{ChainedProvider, DynamicProvider, SymbolProvider};
use std::sync::{Arc, Mutex};

#[test]
fn jit_code_calls_bundle_and_libm_symbols_through_a_provider_chain() {
    let s = Scratch::new();
    let lib = s.dir.path().join("libjitbundle.so");
    // A bundle library exporting `bundle_triple` (plus the ABI symbols).
    let src = format!(
        "{}int64_t bundle_triple(int64_t x) {{ return 3 * x; }}\n",
        c_source("POLYLOAD_ABI_VERSION_PACKED", &[])
    );
    cc_shared(&src, &lib);

    let chain = Arc::new(ChainedProvider::new());
    // SAFETY: our own test library and libm.
    chain.add(Arc::new(unsafe { DynamicProvider::load(&lib) }.unwrap()));
    // SAFETY: as above.
    chain.add(Arc::new(
        unsafe { DynamicProvider::load("libm.so.6") }.unwrap(),
    ));

    let asked = Arc::new(Mutex::new(Vec::<(String, bool)>::new()));
    let mut flags = settings::builder();
    flags.set("use_colocated_libcalls", "false").unwrap();
    flags.set("is_pic", "false").unwrap();
    let isa = cranelift_native::builder()
        .unwrap()
        .finish(settings::Flags::new(flags))
        .unwrap();
    let mut builder = JITBuilder::with_isa(isa, default_libcall_names());
    {
        let (chain, asked) = (chain.clone(), asked.clone());
        // Consulted before cranelift's own dlsym fallback.
        builder.symbol_lookup_fn(Box::new(move |name| {
            let found = chain.get_symbol(name);
            asked
                .lock()
                .unwrap()
                .push((name.to_string(), found.is_some()));
            found
        }));
    }
    let mut module = JITModule::new(builder);

    // Imports: i64 bundle_triple(i64), double sqrt(double).
    let mut triple_sig = module.make_signature();
    triple_sig.params.push(AbiParam::new(types::I64));
    triple_sig.returns.push(AbiParam::new(types::I64));
    let triple = module
        .declare_function("bundle_triple", Linkage::Import, &triple_sig)
        .unwrap();
    let mut sqrt_sig = module.make_signature();
    sqrt_sig.params.push(AbiParam::new(types::F64));
    sqrt_sig.returns.push(AbiParam::new(types::F64));
    let sqrt = module
        .declare_function("sqrt", Linkage::Import, &sqrt_sig)
        .unwrap();

    // fn combine(x: i64, y: f64) -> f64 { sqrt(y) + bundle_triple(x) as f64 }
    let mut ctx = module.make_context();
    ctx.func.signature.params.push(AbiParam::new(types::I64));
    ctx.func.signature.params.push(AbiParam::new(types::F64));
    ctx.func.signature.returns.push(AbiParam::new(types::F64));
    let mut fctx = FunctionBuilderContext::new();
    {
        let mut b = FunctionBuilder::new(&mut ctx.func, &mut fctx);
        let block = b.create_block();
        b.append_block_params_for_function_params(block);
        b.switch_to_block(block);
        b.seal_block(block);
        let (x, y) = (b.block_params(block)[0], b.block_params(block)[1]);
        let triple_ref = module.declare_func_in_func(triple, b.func);
        let sqrt_ref = module.declare_func_in_func(sqrt, b.func);
        let t = b.ins().call(triple_ref, &[x]);
        let t = b.inst_results(t)[0];
        let r = b.ins().call(sqrt_ref, &[y]);
        let r = b.inst_results(r)[0];
        let tf = b.ins().fcvt_from_sint(types::F64, t);
        let sum = b.ins().fadd(r, tf);
        b.ins().return_(&[sum]);
        b.finalize(module.target_config());
    }
    let id = module
        .declare_function("combine", Linkage::Export, &ctx.func.signature)
        .unwrap();
    module.define_function(id, &mut ctx).unwrap();
    module.clear_context(&mut ctx);
    module.finalize_definitions().unwrap();
    let code = module.get_finalized_function(id);
    // SAFETY: compiled above with exactly this signature.
    let combine: extern "C" fn(i64, f64) -> f64 = unsafe { std::mem::transmute(code) };
    assert_eq!(combine(14, 81.0), 9.0 + 42.0);

    let asked = asked.lock().unwrap();
    assert!(asked.contains(&("bundle_triple".into(), true)), "{asked:?}");
    assert!(asked.contains(&("sqrt".into(), true)), "{asked:?}");
    drop(asked);
    // SAFETY: no JIT code runs after this.
    unsafe { module.free_memory() };
}

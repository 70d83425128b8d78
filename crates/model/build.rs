//! With the `cuda` feature, compiles the fused training kernels (`cuda/*.cu`) to PTX, one
//! module per file, and writes their text as constants into `$OUT_DIR/ptx.rs`
//! (see `src/fused_cuda.rs`). Without it there is nothing to build.

#[cfg(feature = "cuda")]
fn main() {
    let out = std::path::PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    let ptx = cudaforge::KernelBuilder::new()
        .source_dir("cuda")
        .arg("-std=c++17")
        .arg("-O3")
        .build_ptx()
        .unwrap_or_else(|e| panic!("compiling the CUDA kernels in cuda/: {e}"));
    ptx.write(out.join("ptx.rs"))
        .unwrap_or_else(|e| panic!("writing {}: {e}", out.join("ptx.rs").display()));
}

#[cfg(not(feature = "cuda"))]
fn main() {
    println!("cargo::rerun-if-changed=build.rs");
}

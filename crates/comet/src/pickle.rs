//! A restricted unpickler for PyTorch checkpoints: it interprets the pickle opcodes that
//! `torch.save` writes and **never calls Python code**.
//!
//! Globals fall in three classes:
//! - interpreted: `torch._utils._rebuild_tensor_v2` / `_rebuild_parameter` build a
//!   [`TensorRef`], `collections.OrderedDict` (and the dict subclasses Lightning saves) build
//!   a [`Value::Dict`], and `torch.<Type>Storage` names the dtype of a persistent storage;
//! - tolerated: a short list of data classes that Lightning checkpoints carry outside the
//!   weights (`argparse.Namespace`, numpy scalars, `pathlib` paths, `lightning.*` and
//!   `pytorch_lightning.*` classes). They become opaque [`Value::Object`]s; nothing is
//!   called, and a state dict holding one is refused by the checkpoint reader;
//! - everything else (`os.system`, `builtins.eval`, …) is refused by name.
//!
//! Every size is bounded by the input: strings cannot outrun the data, containers nest at
//! most [`MAX_DEPTH`] deep, and the copies made when a memoised container is modified are
//! capped at a multiple of the input length.

use std::collections::HashMap;
use std::rc::Rc;

/// Deepest container nesting accepted (state dicts nest 3–5 deep).
pub const MAX_DEPTH: u32 = 100;

/// An unpickling failure, with the byte offset of the opcode that caused it.
#[derive(Debug, thiserror::Error)]
#[error("pickle byte {offset}: {message}")]
pub struct PickleError {
    /// Offset of the failing opcode in the pickle data.
    pub offset: usize,
    /// What went wrong.
    pub message: String,
}

/// Element type of a torch storage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StorageDtype {
    /// `torch.FloatStorage`.
    F32,
    /// `torch.DoubleStorage`.
    F64,
    /// `torch.HalfStorage`.
    F16,
    /// `torch.BFloat16Storage`.
    Bf16,
    /// `torch.LongStorage`.
    I64,
    /// `torch.IntStorage`.
    I32,
    /// `torch.ShortStorage`.
    I16,
    /// `torch.CharStorage`.
    I8,
    /// `torch.ByteStorage`.
    U8,
    /// `torch.BoolStorage`.
    Bool,
}

impl StorageDtype {
    fn from_storage_name(name: &str) -> Option<Self> {
        Some(match name {
            "FloatStorage" => Self::F32,
            "DoubleStorage" => Self::F64,
            "HalfStorage" => Self::F16,
            "BFloat16Storage" => Self::Bf16,
            "LongStorage" => Self::I64,
            "IntStorage" => Self::I32,
            "ShortStorage" => Self::I16,
            "CharStorage" => Self::I8,
            "ByteStorage" => Self::U8,
            "BoolStorage" => Self::Bool,
            _ => return None,
        })
    }

    /// Bytes per element.
    pub fn size(self) -> usize {
        match self {
            Self::F64 | Self::I64 => 8,
            Self::F32 | Self::I32 => 4,
            Self::F16 | Self::Bf16 | Self::I16 => 2,
            Self::I8 | Self::U8 | Self::Bool => 1,
        }
    }
}

/// A storage named by a persistent id: its record is `data/<key>` in the torch zip.
#[derive(Debug, Clone, PartialEq)]
pub struct StorageRef {
    /// Record name inside the archive's `data/` folder.
    pub key: String,
    /// Element type.
    pub dtype: StorageDtype,
    /// Elements in the storage.
    pub numel: usize,
}

/// A tensor as `_rebuild_tensor_v2` describes it: a strided view of a storage.
#[derive(Debug, Clone, PartialEq)]
pub struct TensorRef {
    /// The storage the tensor views.
    pub storage: StorageRef,
    /// Offset of the first element, in elements.
    pub offset: usize,
    /// Sizes per dimension.
    pub shape: Vec<usize>,
    /// Strides per dimension, in elements.
    pub stride: Vec<usize>,
}

/// A container's values with its cached nesting depth.
#[derive(Debug, Clone, PartialEq)]
pub struct Items {
    depth: u32,
    /// The elements, in pickle order.
    pub values: Vec<Value>,
}

/// A dict's pairs, in insertion order, with its cached nesting depth.
#[derive(Debug, Clone, PartialEq)]
pub struct Pairs {
    depth: u32,
    /// The key/value pairs (a later duplicate key shadows an earlier one).
    pub pairs: Vec<(Value, Value)>,
}

/// An instance of a tolerated class, never constructed: its class name and arguments.
#[derive(Debug, Clone, PartialEq)]
pub struct Object {
    depth: u32,
    /// `module.name` of the class.
    pub class: String,
    /// The arguments the pickle would have called it with.
    pub args: Value,
}

/// An unpickled value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// `None`.
    None,
    /// `True` / `False`.
    Bool(bool),
    /// An integer that fits 64 bits.
    Int(i64),
    /// A float.
    Float(f64),
    /// A text string.
    Str(Rc<str>),
    /// A byte string.
    Bytes(Rc<[u8]>),
    /// A tuple.
    Tuple(Rc<Items>),
    /// A list (sets are read as lists).
    List(Rc<Items>),
    /// A dict or `OrderedDict`.
    Dict(Rc<Pairs>),
    /// A tolerated global class or function, not called.
    Global(Rc<str>),
    /// An opaque instance of a tolerated class.
    Object(Rc<Object>),
    /// A persistent storage reference.
    Storage(Rc<StorageRef>),
    /// A tensor.
    Tensor(Rc<TensorRef>),
}

impl Value {
    fn depth(&self) -> u32 {
        match self {
            Value::Tuple(i) | Value::List(i) => i.depth,
            Value::Dict(p) => p.depth,
            Value::Object(o) => o.depth,
            _ => 0,
        }
    }

    /// The string, if this is one.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    /// The value under a string key, if this is a dict that has it (the last one wins).
    pub fn get(&self, key: &str) -> Option<&Value> {
        match self {
            Value::Dict(p) => p
                .pairs
                .iter()
                .rev()
                .find(|(k, _)| k.as_str() == Some(key))
                .map(|(_, v)| v),
            _ => None,
        }
    }

    /// A short description of the value's kind, for error messages.
    pub fn kind(&self) -> String {
        match self {
            Value::None => "None".into(),
            Value::Bool(_) => "bool".into(),
            Value::Int(_) => "int".into(),
            Value::Float(_) => "float".into(),
            Value::Str(_) => "str".into(),
            Value::Bytes(_) => "bytes".into(),
            Value::Tuple(_) => "tuple".into(),
            Value::List(_) => "list".into(),
            Value::Dict(_) => "dict".into(),
            Value::Global(g) => format!("global {g}"),
            Value::Object(o) => format!("{} object", o.class),
            Value::Storage(_) => "storage".into(),
            Value::Tensor(_) => "tensor".into(),
        }
    }

    /// The value as JSON when it is plain data (None, bools, numbers, strings, lists,
    /// tuples, dicts with string keys); `None` otherwise.
    pub fn to_json(&self) -> Option<serde_json::Value> {
        use serde_json::Value as J;
        Some(match self {
            Value::None => J::Null,
            Value::Bool(b) => J::Bool(*b),
            Value::Int(i) => J::from(*i),
            Value::Float(f) => J::from(*f),
            Value::Str(s) => J::String(s.to_string()),
            Value::Tuple(i) | Value::List(i) => {
                J::Array(i.values.iter().map(Value::to_json).collect::<Option<_>>()?)
            }
            Value::Dict(p) => {
                let mut m = serde_json::Map::new();
                for (k, v) in &p.pairs {
                    m.insert(k.as_str()?.to_string(), v.to_json()?);
                }
                J::Object(m)
            }
            _ => return None,
        })
    }
}

/// The address of a list, tuple or dict, which identifies it while it is alive.
fn container_ptr(v: &Value) -> Option<usize> {
    match v {
        Value::List(i) | Value::Tuple(i) => Some(Rc::as_ptr(i) as usize),
        Value::Dict(p) => Some(Rc::as_ptr(p) as usize),
        _ => None,
    }
}

fn items(values: Vec<Value>) -> Rc<Items> {
    let depth = 1 + values.iter().map(Value::depth).max().unwrap_or(0);
    Rc::new(Items { depth, values })
}

fn pairs(pairs: Vec<(Value, Value)>) -> Rc<Pairs> {
    let depth = 1 + pairs
        .iter()
        .map(|(k, v)| k.depth().max(v.depth()))
        .max()
        .unwrap_or(0);
    Rc::new(Pairs { depth, pairs })
}

/// How a global is treated.
enum GlobalKind {
    RebuildTensor,
    RebuildParameter,
    DictClass,
    Storage,
    Tolerated,
}

/// Tolerated data classes outside the weights (never called).
const TOLERATED: &[&str] = &[
    "argparse.Namespace",
    "builtins.set",
    "builtins.frozenset",
    "builtins.slice",
    "pathlib.PosixPath",
    "pathlib.WindowsPath",
    "pathlib.PurePosixPath",
    "pathlib.PureWindowsPath",
    "numpy.dtype",
    "numpy.ndarray",
    "numpy.core.multiarray.scalar",
    "numpy.core.multiarray._reconstruct",
    "numpy._core.multiarray.scalar",
    "numpy._core.multiarray._reconstruct",
    "torch.torch_version.TorchVersion",
    "torch.Size",
];

/// Module prefixes of tolerated training-framework classes (never called).
const TOLERATED_PREFIXES: &[&str] = &["pytorch_lightning.", "lightning.", "lightning_fabric."];

fn classify_global(module: &str, name: &str) -> Option<GlobalKind> {
    let full = format!("{module}.{name}");
    Some(match full.as_str() {
        "torch._utils._rebuild_tensor_v2" => GlobalKind::RebuildTensor,
        "torch._utils._rebuild_parameter" | "torch._utils._rebuild_parameter_with_state" => {
            GlobalKind::RebuildParameter
        }
        "collections.OrderedDict" | "collections.defaultdict" => GlobalKind::DictClass,
        _ if full.ends_with(".AttributeDict")
            && TOLERATED_PREFIXES.iter().any(|p| full.starts_with(p)) =>
        {
            GlobalKind::DictClass
        }
        _ if module == "torch" && StorageDtype::from_storage_name(name).is_some() => {
            GlobalKind::Storage
        }
        _ if TOLERATED.contains(&full.as_str())
            || TOLERATED_PREFIXES.iter().any(|p| full.starts_with(p)) =>
        {
            GlobalKind::Tolerated
        }
        _ => return None,
    })
}

/// Unpickles `data` without running any code (see the module docs for what is accepted).
pub fn unpickle(data: &[u8]) -> Result<Value, PickleError> {
    Machine::new(data).run()
}

/// Stack entries: values and MARKs.
enum Slot {
    Mark,
    Value(Value),
}

struct Machine<'a> {
    data: &'a [u8],
    pos: usize,
    op_at: usize,
    stack: Vec<Slot>,
    memo: HashMap<u32, Value>,
    /// Memo indices naming each memoised container, by the container's address.
    aliases: HashMap<usize, Vec<u32>>,
    /// Memo indices detached while the top container is mutated.
    detached: Vec<u32>,
    copy_budget: usize,
}

impl<'a> Machine<'a> {
    fn new(data: &'a [u8]) -> Self {
        Machine {
            data,
            pos: 0,
            op_at: 0,
            stack: Vec::new(),
            memo: HashMap::new(),
            aliases: HashMap::new(),
            detached: Vec::new(),
            copy_budget: 16 * data.len() + 4096,
        }
    }

    fn err<T>(&self, message: impl Into<String>) -> Result<T, PickleError> {
        Err(PickleError {
            offset: self.op_at,
            message: message.into(),
        })
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], PickleError> {
        if n > self.data.len() - self.pos {
            return self.err(format!(
                "needs {n} bytes but only {} remain",
                self.data.len() - self.pos
            ));
        }
        let s = &self.data[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    fn u8(&mut self) -> Result<u8, PickleError> {
        Ok(self.take(1)?[0])
    }

    fn le<const N: usize>(&mut self) -> Result<[u8; N], PickleError> {
        let mut b = [0u8; N];
        b.copy_from_slice(self.take(N)?);
        Ok(b)
    }

    fn len_u64(&mut self, v: u64) -> Result<usize, PickleError> {
        usize::try_from(v).or_else(|_| self.err(format!("length {v} is too large")))
    }

    fn line(&mut self) -> Result<&'a str, PickleError> {
        let rest = &self.data[self.pos..];
        let Some(end) = rest.iter().position(|&b| b == b'\n') else {
            return self.err("unterminated text line");
        };
        self.pos += end + 1;
        std::str::from_utf8(&rest[..end]).or_else(|_| self.err("text line is not UTF-8"))
    }

    fn text(&mut self, n: usize) -> Result<Value, PickleError> {
        let b = self.take(n)?;
        match std::str::from_utf8(b) {
            Ok(s) => Ok(Value::Str(s.into())),
            Err(_) => self.err("string is not valid UTF-8"),
        }
    }

    fn push(&mut self, v: Value) -> Result<(), PickleError> {
        if v.depth() > MAX_DEPTH {
            return self.err(format!("containers nest deeper than {MAX_DEPTH}"));
        }
        self.stack.push(Slot::Value(v));
        Ok(())
    }

    fn pop(&mut self) -> Result<Value, PickleError> {
        match self.stack.pop() {
            Some(Slot::Value(v)) => Ok(v),
            Some(Slot::Mark) => self.err("unexpected MARK on the stack"),
            None => self.err("stack underflow"),
        }
    }

    fn top(&mut self) -> Result<&mut Value, PickleError> {
        match self.stack.last_mut() {
            Some(Slot::Value(v)) => Ok(v),
            _ => Err(PickleError {
                offset: self.op_at,
                message: "expected a value on the stack".into(),
            }),
        }
    }

    /// Pops everything above the topmost MARK, and the MARK.
    fn pop_mark(&mut self) -> Result<Vec<Value>, PickleError> {
        let Some(at) = self.stack.iter().rposition(|s| matches!(s, Slot::Mark)) else {
            return self.err("no MARK on the stack");
        };
        let out = self
            .stack
            .drain(at + 1..)
            .map(|s| match s {
                Slot::Value(v) => v,
                Slot::Mark => unreachable!("rposition found the last MARK"),
            })
            .collect();
        self.stack.pop();
        Ok(out)
    }

    fn memo_put(&mut self, idx: u32) -> Result<(), PickleError> {
        if self.memo.len() > self.data.len() {
            return self.err("memo larger than the pickle");
        }
        let v = self.top()?.clone();
        if let Some(old) = self.memo.get(&idx).and_then(container_ptr) {
            if let Some(list) = self.aliases.get_mut(&old) {
                list.retain(|&i| i != idx);
                if list.is_empty() {
                    self.aliases.remove(&old);
                }
            }
        }
        if let Some(ptr) = container_ptr(&v) {
            self.aliases.entry(ptr).or_default().push(idx);
        }
        self.memo.insert(idx, v);
        Ok(())
    }

    fn memo_get(&mut self, idx: u32) -> Result<(), PickleError> {
        match self.memo.get(&idx) {
            Some(v) => {
                let v = v.clone();
                self.push(v)
            }
            None => self.err(format!("memo entry {idx} is not defined")),
        }
    }

    /// Charges a copy-on-write of `n` elements against the budget.
    fn charge(&mut self, n: usize) -> Result<(), PickleError> {
        if n > self.copy_budget {
            return self.err("pickle copies more data than its size allows");
        }
        self.copy_budget -= n;
        Ok(())
    }

    /// Appends to the list (or records nothing for the opaque object) on top of the stack.
    fn extend_top(&mut self, new: Vec<Value>) -> Result<(), PickleError> {
        self.mutate_top(|top| match top {
            Value::List(i) => Ok(Some(i.values.len())),
            Value::Object(_) => Ok(None), // never called, nothing recorded
            other => Err(format!("APPEND(S) to a {}", other.kind())),
        })?;
        self.with_top_container(|top| {
            if let Value::List(i) = top {
                let items = Rc::get_mut(i).expect("made unique by mutate_top");
                for v in new {
                    items.depth = items.depth.max(v.depth() + 1);
                    items.values.push(v);
                }
            }
        })
    }

    /// Sets items of the dict (or records nothing for the opaque object) on top of the stack.
    fn set_items_top(&mut self, flat: Vec<Value>) -> Result<(), PickleError> {
        if !flat.len().is_multiple_of(2) {
            return self.err("SETITEMS with an odd number of values");
        }
        self.mutate_top(|top| match top {
            Value::Dict(p) => Ok(Some(p.pairs.len())),
            Value::Object(_) => Ok(None),
            other => Err(format!("SETITEM(S) on a {}", other.kind())),
        })?;
        self.with_top_container(|top| {
            if let Value::Dict(p) = top {
                let dict = Rc::get_mut(p).expect("made unique by mutate_top");
                let mut it = flat.into_iter();
                while let (Some(k), Some(v)) = (it.next(), it.next()) {
                    dict.depth = dict.depth.max(k.depth().max(v.depth()) + 1);
                    dict.pairs.push((k, v));
                }
            }
        })
    }

    /// Prepares the container on top of the stack for in-place mutation, keeping Python's
    /// aliasing: the memo entries that name it are detached (and re-attached by
    /// [`Machine::with_top_container`]); a container still shared elsewhere is copied, the
    /// copy charged against the budget. `check` returns the container's length, or None for
    /// an opaque object (left untouched).
    fn mutate_top(
        &mut self,
        check: impl FnOnce(&Value) -> Result<Option<usize>, String>,
    ) -> Result<(), PickleError> {
        let len = match check(self.top()?) {
            Ok(len) => len,
            Err(m) => return self.err(m),
        };
        if len.is_none() {
            return Ok(());
        }
        let ptr = container_ptr(self.top()?).expect("checked to be a container");
        self.detached = self.aliases.remove(&ptr).unwrap_or_default();
        for i in &self.detached {
            self.memo.remove(i);
        }
        let shared = match self.top()? {
            Value::List(i) => Rc::strong_count(i) > 1,
            Value::Dict(p) => Rc::strong_count(p) > 1,
            _ => false,
        };
        if shared {
            self.charge(len.unwrap_or(0))?;
            match self.top()? {
                Value::List(i) => {
                    Rc::make_mut(i);
                }
                Value::Dict(p) => {
                    Rc::make_mut(p);
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// Runs `f` on the top container prepared by [`Machine::mutate_top`], checks its depth
    /// and re-attaches its memo entries.
    fn with_top_container(&mut self, f: impl FnOnce(&mut Value)) -> Result<(), PickleError> {
        let top = self.top()?;
        f(top);
        let (depth, value) = (top.depth(), top.clone());
        let detached = std::mem::take(&mut self.detached);
        if let Some(ptr) = container_ptr(&value) {
            for &i in &detached {
                self.memo.insert(i, value.clone());
            }
            if !detached.is_empty() {
                self.aliases.insert(ptr, detached);
            }
        }
        if depth > MAX_DEPTH {
            return self.err(format!("containers nest deeper than {MAX_DEPTH}"));
        }
        Ok(())
    }

    fn global(&mut self, module: &str, name: &str) -> Result<Value, PickleError> {
        match classify_global(module, name) {
            Some(_) => Ok(Value::Global(format!("{module}.{name}").into())),
            None => self.err(format!(
                "global `{module}.{name}` is not allowed: a tensor checkpoint uses only \
                 torch._utils._rebuild_tensor_v2, torch.*Storage, collections.OrderedDict \
                 and plain data"
            )),
        }
    }

    /// REDUCE / NEWOBJ: interpret a known callable, or record an opaque object.
    fn call(&mut self, callable: Value, args: Value) -> Result<Value, PickleError> {
        let Value::Global(name) = &callable else {
            let k = callable.kind();
            return self.err(format!("cannot call a {k}"));
        };
        let (module, short) = name.rsplit_once('.').unwrap_or(("", name));
        let Some(kind) = classify_global(module, short) else {
            return self.err(format!("global `{name}` is not allowed"));
        };
        let argv: &[Value] = match &args {
            Value::Tuple(t) => &t.values,
            _ => return self.err(format!("arguments of `{name}` are not a tuple")),
        };
        match kind {
            GlobalKind::RebuildTensor => self.rebuild_tensor(argv),
            GlobalKind::RebuildParameter => match argv.first() {
                Some(t @ Value::Tensor(_)) => Ok(t.clone()),
                _ => self.err(format!("`{name}` without a tensor argument")),
            },
            GlobalKind::DictClass => Ok(Value::Dict(pairs(Vec::new()))),
            GlobalKind::Storage => self.err(format!("`{name}` is only valid in a storage id")),
            GlobalKind::Tolerated => {
                let depth = args.depth() + 1;
                Ok(Value::Object(Rc::new(Object {
                    depth,
                    class: name.to_string(),
                    args,
                })))
            }
        }
    }

    fn usize_of(&self, v: &Value, what: &str) -> Result<usize, PickleError> {
        match v {
            Value::Int(i) if *i >= 0 => Ok(*i as usize),
            _ => self.err(format!(
                "{what}: expected a non-negative int, got {}",
                v.kind()
            )),
        }
    }

    fn usizes_of(&self, v: &Value, what: &str) -> Result<Vec<usize>, PickleError> {
        match v {
            Value::Tuple(t) => t.values.iter().map(|x| self.usize_of(x, what)).collect(),
            _ => self.err(format!("{what}: expected a tuple, got {}", v.kind())),
        }
    }

    fn rebuild_tensor(&mut self, argv: &[Value]) -> Result<Value, PickleError> {
        if !(6..=7).contains(&argv.len()) {
            return self.err(format!(
                "_rebuild_tensor_v2 takes 6 or 7 arguments, got {}",
                argv.len()
            ));
        }
        let Value::Storage(storage) = &argv[0] else {
            return self.err("_rebuild_tensor_v2: first argument is not a storage");
        };
        let offset = self.usize_of(&argv[1], "tensor offset")?;
        let shape = self.usizes_of(&argv[2], "tensor shape")?;
        let stride = self.usizes_of(&argv[3], "tensor stride")?;
        if shape.len() != stride.len() {
            return self.err("tensor shape and stride differ in length");
        }
        // The last element must lie inside the storage.
        let mut last = offset as u128;
        for (&n, &s) in shape.iter().zip(&stride) {
            if n == 0 {
                last = 0;
                break;
            }
            last += (n as u128 - 1) * s as u128;
        }
        let empty = shape.contains(&0);
        if !empty && last >= storage.numel as u128 {
            return self.err(format!(
                "tensor view (offset {offset}, shape {shape:?}, stride {stride:?}) exceeds its \
                 storage of {} elements",
                storage.numel
            ));
        }
        Ok(Value::Tensor(Rc::new(TensorRef {
            storage: (**storage).clone(),
            offset,
            shape,
            stride,
        })))
    }

    fn persistent(&mut self, pid: Value) -> Result<Value, PickleError> {
        let parts: &[Value] = match &pid {
            Value::Tuple(t) => &t.values,
            _ => return self.err("persistent id is not a tuple"),
        };
        let [tag, ty, key, _location, numel] = parts else {
            return self.err("persistent id is not ('storage', type, key, location, numel)");
        };
        if tag.as_str() != Some("storage") {
            return self.err("persistent id is not a storage");
        }
        let dtype = match ty {
            Value::Global(g) => g
                .strip_prefix("torch.")
                .and_then(StorageDtype::from_storage_name),
            _ => None,
        };
        let Some(dtype) = dtype else {
            return self.err(format!("unsupported storage type {}", ty.kind()));
        };
        let Some(key) = key.as_str() else {
            return self.err("storage key is not a string");
        };
        if key.is_empty() || !key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
            return self.err(format!("storage key {key:?} is not a plain record name"));
        }
        let numel = self.usize_of(numel, "storage size")?;
        Ok(Value::Storage(Rc::new(StorageRef {
            key: key.to_string(),
            dtype,
            numel,
        })))
    }

    fn run(mut self) -> Result<Value, PickleError> {
        loop {
            self.op_at = self.pos;
            let op = self.u8()?;
            match op {
                0x80 => {
                    let proto = self.u8()?;
                    if proto > 5 {
                        return self.err(format!("unsupported pickle protocol {proto}"));
                    }
                }
                0x95 => {
                    self.take(8)?; // FRAME: a length hint only
                }
                b'.' => {
                    let v = self.pop()?;
                    return Ok(v);
                }
                b'(' => self.stack.push(Slot::Mark),
                b'0' => {
                    self.pop()?;
                }
                b'1' => {
                    self.pop_mark()?;
                }
                b'2' => {
                    let v = self.top()?.clone();
                    self.push(v)?;
                }
                b'N' => self.push(Value::None)?,
                0x88 => self.push(Value::Bool(true))?,
                0x89 => self.push(Value::Bool(false))?,
                b'J' => {
                    let v = i32::from_le_bytes(self.le()?);
                    self.push(Value::Int(v.into()))?
                }
                b'K' => {
                    let v = self.u8()?;
                    self.push(Value::Int(v.into()))?
                }
                b'M' => {
                    let v = u16::from_le_bytes(self.le()?);
                    self.push(Value::Int(v.into()))?
                }
                0x8a | 0x8b => {
                    let n = if op == 0x8a {
                        self.u8()? as usize
                    } else {
                        let n = i32::from_le_bytes(self.le()?);
                        usize::try_from(n).or_else(|_| self.err("negative LONG4 length"))?
                    };
                    let v = self.long(n)?;
                    self.push(Value::Int(v))?
                }
                b'G' => {
                    let v = f64::from_be_bytes(self.le()?);
                    self.push(Value::Float(v))?
                }
                b'X' => {
                    let n = u32::from_le_bytes(self.le()?) as usize;
                    let v = self.text(n)?;
                    self.push(v)?
                }
                0x8c => {
                    let n = self.u8()? as usize;
                    let v = self.text(n)?;
                    self.push(v)?
                }
                0x8d => {
                    let n = u64::from_le_bytes(self.le()?);
                    let n = self.len_u64(n)?;
                    let v = self.text(n)?;
                    self.push(v)?
                }
                b'T' | b'U' | b'B' | b'C' | 0x8e => {
                    let n = match op {
                        b'U' | b'C' => self.u8()? as usize,
                        0x8e => {
                            let n = u64::from_le_bytes(self.le()?);
                            self.len_u64(n)?
                        }
                        _ => u32::from_le_bytes(self.le()?) as usize,
                    };
                    let b = self.take(n)?;
                    self.push(Value::Bytes(b.into()))?
                }
                b')' => self.push(Value::Tuple(items(Vec::new())))?,
                b't' => {
                    let v = self.pop_mark()?;
                    self.push(Value::Tuple(items(v)))?
                }
                0x85..=0x87 => {
                    let n = (op - 0x84) as usize;
                    let mut v = Vec::with_capacity(n);
                    for _ in 0..n {
                        v.push(self.pop()?);
                    }
                    v.reverse();
                    self.push(Value::Tuple(items(v)))?
                }
                b']' | 0x8f => self.push(Value::List(items(Vec::new())))?,
                b'l' | 0x91 => {
                    let v = self.pop_mark()?;
                    self.push(Value::List(items(v)))?
                }
                b'a' => {
                    let v = self.pop()?;
                    self.extend_top(vec![v])?
                }
                b'e' | 0x90 => {
                    let v = self.pop_mark()?;
                    self.extend_top(v)?
                }
                b'}' => self.push(Value::Dict(pairs(Vec::new())))?,
                b'd' => {
                    let flat = self.pop_mark()?;
                    self.push(Value::Dict(pairs(Vec::new())))?;
                    self.set_items_top(flat)?
                }
                b's' => {
                    let v = self.pop()?;
                    let k = self.pop()?;
                    self.set_items_top(vec![k, v])?
                }
                b'u' => {
                    let flat = self.pop_mark()?;
                    self.set_items_top(flat)?
                }
                b'c' => {
                    let module = self.line()?;
                    let name = self.line()?;
                    let g = self.global(module, name)?;
                    self.push(g)?
                }
                0x93 => {
                    let name = self.pop()?;
                    let module = self.pop()?;
                    let (Some(m), Some(n)) = (module.as_str(), name.as_str()) else {
                        return self.err("STACK_GLOBAL needs two strings");
                    };
                    let g = self.global(m, n)?;
                    self.push(g)?
                }
                b'R' | 0x81 => {
                    let args = self.pop()?;
                    let callable = self.pop()?;
                    let v = self.call(callable, args)?;
                    self.push(v)?
                }
                b'b' => {
                    let _state = self.pop()?;
                    // BUILD sets attributes (OrderedDict `_metadata`, object state): not needed
                    // for tensors, and never applied to opaque objects.
                    self.top()?;
                }
                b'Q' => {
                    let pid = self.pop()?;
                    let v = self.persistent(pid)?;
                    self.push(v)?
                }
                b'q' => {
                    let i = self.u8()?;
                    self.memo_put(i.into())?
                }
                b'r' => {
                    let i = u32::from_le_bytes(self.le()?);
                    self.memo_put(i)?
                }
                0x94 => {
                    let i = u32::try_from(self.memo.len()).or_else(|_| self.err("memo full"))?;
                    self.memo_put(i)?
                }
                b'h' => {
                    let i = self.u8()?;
                    self.memo_get(i.into())?
                }
                b'j' => {
                    let i = u32::from_le_bytes(self.le()?);
                    self.memo_get(i)?
                }
                _ => {
                    return self.err(format!(
                        "opcode {} (0x{op:02x}) is not allowed in a tensor checkpoint",
                        opcode_name(op)
                    ))
                }
            }
        }
    }

    fn long(&mut self, n: usize) -> Result<i64, PickleError> {
        if n > 8 {
            return self.err(format!("integer of {n} bytes does not fit 64 bits"));
        }
        let b = self.take(n)?;
        if n == 0 {
            return Ok(0);
        }
        let fill = if b[n - 1] & 0x80 != 0 { 0xff } else { 0 };
        let mut buf = [fill; 8];
        buf[..n].copy_from_slice(b);
        Ok(i64::from_le_bytes(buf))
    }
}

fn opcode_name(op: u8) -> &'static str {
    match op {
        b'i' => "INST",
        b'o' => "OBJ",
        b'I' => "INT",
        b'L' => "LONG",
        b'F' => "FLOAT",
        b'S' => "STRING",
        b'V' => "UNICODE",
        b'P' => "PERSID",
        b'p' => "PUT",
        b'g' => "GET",
        0x82..=0x84 => "EXT",
        0x92 => "NEWOBJ_EX",
        0x96..=0x98 => "BYTEARRAY8/buffer",
        _ => "unknown",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_os_system_by_name() {
        // pickle.dumps of a __reduce__ returning (os.system, ("touch /tmp/pwned",)), protocol 2.
        let data =
            b"\x80\x02cposix\nsystem\nq\x00X\x10\x00\x00\x00touch /tmp/pwnedq\x01\x85q\x02Rq\x03.";
        let e = unpickle(data).unwrap_err();
        assert!(e.message.contains("`posix.system` is not allowed"), "{e}");
        let data = b"\x80\x04\x8c\x02os\x8c\x06system\x93\x8c\x02id\x85R.";
        let e = unpickle(data).unwrap_err();
        assert!(e.message.contains("`os.system` is not allowed"), "{e}");
        let data = b"cbuiltins\neval\n(X\x01\x00\x00\x001tR.";
        assert!(unpickle(data)
            .unwrap_err()
            .message
            .contains("builtins.eval"));
    }

    #[test]
    fn lightning_classes_are_read_as_data_and_never_called() {
        // {'hp': AttributeDict(layer='mix'), 'ns': argparse.Namespace()} as Lightning pickles them.
        let data = b"\x80\x02}(X\x02\x00\x00\x00hpcpytorch_lightning.utilities.parsing\nAttributeDict\n)R(X\x05\x00\x00\x00layerX\x03\x00\x00\x00mixuX\x02\x00\x00\x00nscargparse\nNamespace\n)Ru.";
        let v = unpickle(data).unwrap();
        assert_eq!(
            v.get("hp").unwrap().to_json().unwrap(),
            serde_json::json!({"layer": "mix"})
        );
        let Some(Value::Object(o)) = v.get("ns") else {
            panic!("{v:?}")
        };
        assert_eq!(o.class, "argparse.Namespace");
    }

    #[test]
    fn refuses_text_opcodes_and_truncation() {
        let e = unpickle(b"(ios\nsystem\n.").unwrap_err();
        assert!(e.message.contains("INST"), "{e}");
        let e = unpickle(b"\x80\x02X\xff\x00\x00\x00ab").unwrap_err();
        assert!(e.message.contains("only 2 remain"), "{e}");
        assert!(unpickle(b"").is_err());
    }

    #[test]
    fn bounds_nesting_depth() {
        let mut data = vec![0x80, 2];
        data.extend(std::iter::repeat_n(b']', 500));
        data.extend(std::iter::repeat_n(b'a', 499));
        data.push(b'.');
        let e = unpickle(&data).unwrap_err();
        assert!(e.message.contains("nest deeper"), "{e}");
    }

    #[test]
    fn bounds_memo_copies() {
        // Re-memoising a list between appends keeps it shared, not copied.
        let mut data = vec![0x80, 2, b']'];
        for _ in 0..20000 {
            data.extend([b'q', 0, b'N', b'a']);
        }
        data.extend([b'0', b'h', 0, b'.']);
        let Value::List(l) = unpickle(&data).unwrap() else {
            panic!("not a list")
        };
        assert_eq!(l.values.len(), 20000);
        // Appending to copies that stay on the stack would copy quadratically.
        let mut data = vec![0x80, 2, b']', b'q', 0];
        for _ in 0..20000 {
            data.extend([b'h', 0, b'N', b'a', b'q', 0]);
        }
        data.push(b'.');
        let e = unpickle(&data).unwrap_err();
        assert!(e.message.contains("copies more data"), "{e}");
    }

    #[test]
    fn reads_plain_data_and_shared_memo() {
        // {'a': [1, 2.5, None, True], 'b': 'x', 'c': <memo of the list>}
        let data = b"\x80\x02}q\x00(X\x01\x00\x00\x00aq\x01]q\x02(K\x01G@\x04\x00\x00\x00\x00\x00\x00N\x88eX\x01\x00\x00\x00bX\x01\x00\x00\x00xX\x01\x00\x00\x00ch\x02u.";
        let v = unpickle(data).unwrap();
        let j = v.to_json().unwrap();
        assert_eq!(
            j,
            serde_json::json!({"a": [1, 2.5, null, true], "b": "x", "c": [1, 2.5, null, true]})
        );
    }

    #[test]
    fn rebuilds_a_tensor_and_checks_its_extent() {
        // OrderedDict([('w', _rebuild_tensor_v2(storage('0', Float, 6), 0, (2, 3), (3, 1),
        // False, OrderedDict()))]) as torch.save writes it.
        let good = tensor_pickle(b"K\x02K\x03\x86K\x03K\x01\x86");
        let v = unpickle(&good).unwrap();
        let Some(Value::Tensor(t)) = v.get("w") else {
            panic!("{v:?}")
        };
        assert_eq!(
            (t.shape.clone(), t.storage.dtype),
            (vec![2, 3], StorageDtype::F32)
        );
        let bad = tensor_pickle(b"K\x03K\x03\x86K\x03K\x01\x86");
        let e = unpickle(&bad).unwrap_err();
        assert!(e.message.contains("exceeds its storage"), "{e}");
    }

    fn tensor_pickle(shape_stride: &[u8]) -> Vec<u8> {
        let mut d = b"\x80\x02ccollections\nOrderedDict\n)R(X\x01\x00\x00\x00w".to_vec();
        d.extend(b"ctorch._utils\n_rebuild_tensor_v2\n(");
        d.extend(b"(X\x07\x00\x00\x00storagectorch\nFloatStorage\nX\x01\x00\x00\x000X\x03\x00\x00\x00cpuK\x06tQ");
        d.extend(b"K\x00");
        d.extend(shape_stride);
        d.extend(b"\x89ccollections\nOrderedDict\n)RtRu.");
        d
    }
}

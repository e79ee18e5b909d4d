//! Run-time name resolution for the evaluator: [`crate::eval::Scope`] over a checked [`Program`].
//!
//! The checker already proved every name resolves; this module answers the evaluator's questions
//! with *values*: a module `let` (evaluated on first use, overridden by `--var`), a step `let`, a
//! capture recorded by an earlier step, a matcher of the module or of an import. The runtime and
//! the language server share it. No I/O: `env()` and friends go through the caller's [`Host`].
//!
//! Two parts: [`Bindings`] holds the data (overrides, evaluated lets, captures); [`Scopes`] holds
//! one [`ModuleScope`] per module that matcher expansion can hand out by reference. Build them as
//! `let b = Bindings::new(…); let scopes = Scopes::new(&b); let scopes = scopes.link();`.

use crate::ast::{self, ItemKind, Path};
use crate::eval::{self, Host, Scope};
use crate::program::{ModuleId, Origin, Program};
use crate::value::Value;
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::collections::{HashMap, HashSet};

/// Locks a mutex, ignoring poisoning: the guarded maps stay consistent after any panic (every
/// update is a single insert or remove).
trait LockExt<T> {
    fn lock_(&self) -> MutexGuard<'_, T>;
}

impl<T> LockExt<T> for Mutex<T> {
    fn lock_(&self) -> MutexGuard<'_, T> {
        self.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Values known during a run: overrides, evaluated module `let`s and captures.
pub struct Bindings<'p> {
    program: &'p Program,
    host: &'p (dyn Host + Sync),
    overrides: HashMap<String, Value>,
    lets: Mutex<HashMap<(ModuleId, String), Option<Value>>>,
    in_progress: Mutex<HashSet<(ModuleId, String)>>,
    captures: Mutex<HashMap<(usize, usize, String), Value>>,
}

impl<'p> Bindings<'p> {
    /// Bindings over a program; `overrides` (`--var NAME=value`) replace root modules' `let NAME`.
    pub fn new(program: &'p Program, host: &'p (dyn Host + Sync), overrides: HashMap<String, Value>) -> Self {
        Bindings {
            program,
            host,
            overrides,
            lets: Mutex::new(HashMap::new()),
            in_progress: Mutex::new(HashSet::new()),
            captures: Mutex::new(HashMap::new()),
        }
    }

    /// The program.
    pub fn program(&self) -> &'p Program {
        self.program
    }

    /// Records capture `name` of step `step` of test `test`.
    pub fn capture(&self, test: usize, step: usize, name: &str, value: Value) {
        self.captures.lock_().insert((test, step, name.to_string()), value);
    }

    /// A recorded capture.
    pub fn captured(&self, test: usize, step: usize, name: &str) -> Option<Value> {
        self.captures.lock_().get(&(test, step, name.to_string())).cloned()
    }
}

/// One scope per module, linked so matchers can be expanded in their own module.
pub struct Scopes<'b, 'p> {
    bindings: &'b Bindings<'p>,
    modules: Vec<ModuleScope<'b, 'p>>,
}

/// The names of one module (no locals): what `let`s and matcher bodies see.
pub struct ModuleScope<'b, 'p> {
    bindings: &'b Bindings<'p>,
    module: ModuleId,
    peers: OnceLock<&'b [ModuleScope<'b, 'p>]>,
}

impl<'b, 'p> Scopes<'b, 'p> {
    /// Scopes for every module of the program.
    pub fn new(bindings: &'b Bindings<'p>) -> Self {
        let modules =
            bindings.program.modules.iter().map(|m| ModuleScope { bindings, module: m.id, peers: OnceLock::new() }).collect();
        Scopes { bindings, modules }
    }

    /// Links the scopes to each other; use the returned reference from then on.
    pub fn link(&'b self) -> &'b Self {
        for m in &self.modules {
            let _ = m.peers.set(&self.modules);
        }
        self
    }

    /// The scope of a module.
    pub fn module(&self, module: ModuleId) -> &ModuleScope<'b, 'p> {
        &self.modules[module.0 as usize]
    }

    /// The scope inside step `step` of test `test`, with the step's `let`s (and the test's) as
    /// `locals`, innermost last.
    pub fn step<'s>(&'s self, test: usize, step: usize, locals: &'s [(String, Value)]) -> StepScope<'s, 'b, 'p> {
        let module = self.bindings.program.tests[test].module;
        StepScope { scope: self.module(module), test, step, locals }
    }

    /// The value of module `let` `name`.
    pub fn let_value(&self, module: ModuleId, name: &str) -> Option<Value> {
        self.module(module).let_value(module, name)
    }

    /// Evaluates every module `let` now, in source order, so that values are fixed for the whole
    /// run (`let key = uuid()` is one value everywhere) and concurrent steps only read them.
    pub fn prepare(&self) {
        for m in &self.bindings.program.modules {
            for name in m.ast.items.iter().filter_map(|i| match &i.kind {
                ItemKind::Let(l) => Some(&l.name.name),
                _ => None,
            }) {
                self.let_value(m.id, name);
            }
        }
    }

    /// The values of every `secret let` (to redact from all output).
    pub fn secrets(&self) -> Vec<String> {
        let mut out = Vec::new();
        for m in &self.bindings.program.modules {
            for item in &m.ast.items {
                if let ItemKind::Let(l) = &item.kind
                    && l.secret
                    && let Some(v) = self.let_value(m.id, &l.name.name)
                {
                    let text = match v {
                        Value::Str(s) => s.to_string(),
                        other => other.to_string(),
                    };
                    if !text.is_empty() {
                        out.push(text);
                    }
                }
            }
        }
        out
    }
}

impl<'b, 'p> ModuleScope<'b, 'p> {
    fn peer(&self, module: ModuleId) -> &ModuleScope<'b, 'p> {
        match self.peers.get() {
            Some(p) => &p[module.0 as usize],
            None => self,
        }
    }

    fn let_value(&self, module: ModuleId, name: &str) -> Option<Value> {
        let b = self.bindings;
        let key = (module, name.to_string());
        if let Some(v) = b.lets.lock_().get(&key) {
            return v.clone();
        }
        let m = b.program.module(module);
        let value = match b.overrides.get(name) {
            Some(v) if m.origin == Origin::Root => Some(v.clone()),
            _ => {
                let l = m.let_item(name)?;
                if !b.in_progress.lock_().insert(key.clone()) {
                    return None;
                }
                let v = eval::evaluate_value(&l.value, self.peer(module), b.host).ok();
                b.in_progress.lock_().remove(&key);
                v
            }
        };
        b.lets.lock_().insert(key, value.clone());
        value
    }

    fn resolve(&self, path: &Path, test: Option<(usize, usize)>, locals: &[(String, Value)]) -> Option<Value> {
        let program = self.bindings.program;
        let segs: Vec<&str> = path.segments.iter().map(|s| s.name.as_str()).collect();
        let m = program.module(self.module);
        if let [name] = segs.as_slice() {
            if let Some((_, v)) = locals.iter().rev().find(|(n, _)| n == name) {
                return Some(v.clone());
            }
            if m.lets.contains_key(*name) {
                return self.let_value(self.module, name);
            }
        }
        if let [ns, name] = segs.as_slice()
            && let Some(&(target, _)) = m.imports.get(*ns)
            && program.module(target).lets.contains_key(*name)
        {
            return self.let_value(target, name);
        }
        let (ti, _) = test?;
        let find_step = |t: usize, name: &str| program.tests[t].steps.iter().position(|s| s.name.as_deref() == Some(name));
        let b = self.bindings;
        match segs.as_slice() {
            [step, cap] if find_step(ti, step).is_some() => b.captured(ti, find_step(ti, step)?, cap),
            [test, step, cap] => {
                let t = *program.test_index.get(*test)?;
                b.captured(t, find_step(t, step)?, cap)
            }
            [test, cap] => {
                let t = *program.test_index.get(*test)?;
                (t != ti).then(|| b.captured(t, 0, cap)).flatten()
            }
            _ => None,
        }
    }

    fn matcher_of(&self, path: &Path) -> Option<(&ast::Matcher, &dyn Scope)> {
        let program = self.bindings.program;
        let m = program.module(self.module);
        match path.segments.as_slice() {
            [name] => {
                let (_, mt) = m.matcher_item(&name.name)?;
                Some((mt, self as &dyn Scope))
            }
            [ns, name] => {
                let &(target, _) = m.imports.get(&ns.name)?;
                let (_, mt) = program.module(target).matcher_item(&name.name)?;
                Some((mt, self.peer(target) as &dyn Scope))
            }
            _ => None,
        }
    }
}

impl Scope for ModuleScope<'_, '_> {
    fn value(&self, path: &Path) -> Option<Value> {
        self.resolve(path, None, &[])
    }
    fn matcher(&self, path: &Path) -> Option<(&ast::Matcher, &dyn Scope)> {
        self.matcher_of(path)
    }
}

/// The scope of one step: its `let`s, the module's names and the captures of earlier steps.
pub struct StepScope<'s, 'b, 'p> {
    scope: &'s ModuleScope<'b, 'p>,
    test: usize,
    step: usize,
    locals: &'s [(String, Value)],
}

impl Scope for StepScope<'_, '_, '_> {
    fn value(&self, path: &Path) -> Option<Value> {
        self.scope.resolve(path, Some((self.test, self.step)), self.locals)
    }
    fn matcher(&self, path: &Path) -> Option<(&ast::Matcher, &dyn Scope)> {
        self.scope.matcher_of(path)
    }
}

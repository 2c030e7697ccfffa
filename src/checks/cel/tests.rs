//! The CEL environment's tests: compiling, the cost meter, the bounds, reads and names, the
//! Kubernetes functions.

use super::cost::*;
use super::functions::*;
use super::limits::*;
use super::rewrite::*;
use super::*;
use cel::objects::Value;

#[test]
fn names_resolve_against_the_environment() {
    let env = CelEnv::default();
    for f in host_function_names() {
        assert!(env.is_function(f), "{f}");
        // Each is really callable: not an undeclared reference.
        let p = env.compile(&format!("{f}('1')")).unwrap();
        let err = p.execute(&env.root_context()).err().map(|e| e.to_string());
        assert!(
            !err.as_deref().unwrap_or_default().contains("Undeclared"),
            "{f}: {err:?}"
        );
    }
    for ok in [
        "size(object) > 0 && object.name.startsWith('a') && object.name.matches('^a')",
        "object.items.all(x, x.exists(y, y == 1)) && object.items.map(x, x + 1).size() > 0",
        "math.greatest(1, 2) == 2 && strings.quote('a') != '' && type(object) == map",
        "int('1') + double(2) > 0.0 && string(1) == '1' && has(object.a) && duration('1s') > duration('0s')",
        "object.items.filter(x, x > 1).exists_one(y, y == 2) && [1, 2].sort() == [1, 2]",
        "{'a': object}.a != null && dyn(1) == 1 && quantity('1Gi').isGreaterThan(quantity('1Mi'))",
    ] {
        assert_eq!(env.unresolved(ok, &["object"]), Vec::new(), "{ok}");
    }
    let bad = env.unresolved("objects.size() > 0 && lenght(object) > 0", &["object"]);
    assert_eq!(bad.len(), 2, "{bad:?}");
    assert!(
        bad[0]
            .message
            .starts_with("unknown variable `objects` (did you mean `object`?)")
    );
    assert_eq!((bad[0].line, bad[0].column), (1, 1));
    assert!(bad[1].message.starts_with("unknown function `lenght`"));
    assert_eq!((bad[1].line, bad[1].column), (1, 23));
    // A comprehension's variable is not visible outside it.
    let bad = env.unresolved("object.all(x, x > 0) && x > 0", &["object"]);
    assert_eq!(bad.len(), 1, "{bad:?}");
    assert_eq!((bad[0].line, bad[0].column), (1, 25));
}

/// Evaluates `src` with `xs` bound to the list 0..n.
fn run_over(env: &CelEnv, src: &str, n: i64) -> Result<Value, String> {
    let mut ctx = env.root_context();
    ctx.add_variable_from_value("xs", (0..n).map(Value::Int).collect::<Vec<_>>());
    env.compile(src)
        .unwrap()
        .execute(&ctx)
        .map_err(|e| e.to_string())
}

#[test]
fn evaluation_cost_is_bounded() {
    let env = CelEnv::default();
    // 400^3 = 64 million steps (26 s before the budget): an error, after a million.
    let nested =
        run_over(&env, "xs.all(a, xs.all(b, xs.all(c, a + b + c >= 0)))", 400).unwrap_err();
    assert!(nested.contains("cost budget"), "{nested}");
    // What a call builds is charged by its size: 2,000 copies of a 1,000-byte string.
    let joined = run_over(
        &env,
        &format!("size(xs.map(x, '{}').join('')) > 0", "a".repeat(1000)),
        2000,
    )
    .unwrap_err();
    assert!(joined.contains("cost budget"), "{joined}");
    // CEL absorbs an error in `||` and `exists`: an exhausted budget is never absorbed.
    let absorbed = run_over(
        &env,
        "xs.exists(a, a == 399 || xs.exists(b, xs.exists(c, b + c < 0)))",
        400,
    )
    .unwrap_err();
    assert!(absorbed.contains("cost budget"), "{absorbed}");
    let absorbed = run_over(&env, "xs.all(b, xs.all(c, b + c >= 0)) || true", 2000).unwrap_err();
    assert!(absorbed.contains("cost budget"), "{absorbed}");
}

#[test]
fn nesting_is_bounded_at_load_so_evaluation_cannot_overflow_the_stack() {
    let env = CelEnv::default();
    let nest = |levels: usize| {
        let mut e = String::from("'ab'");
        for level in 0..levels {
            e = format!("[{e}].map(s{level}, s{level} + s{level})[0]");
        }
        format!("size({e}) > 0")
    };
    // Twenty levels aborted the audit with a stack overflow: refused when the check loads.
    let deep = env
        .compile(&nest(20))
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(
        deep.contains("nests") && deep.contains("the most is"),
        "{deep}"
    );
    // The deepest expression allowed runs on a thread with the default 2 MiB stack (a test
    // thread's, and less than the engine's), in a debug build.
    let mut levels = 0;
    while env.compile(&nest(levels + 1)).is_ok() {
        levels += 1;
    }
    assert!(levels >= 5, "{levels}");
    assert_eq!(run_over(&env, &nest(levels), 0), Ok(Value::Bool(true)));
    let mut ors = String::from("xs.size() == 0");
    while env.compile(&format!("({ors} || false)")).is_ok() {
        ors = format!("({ors} || false)");
    }
    assert_eq!(run_over(&env, &ors, 0), Ok(Value::Bool(true)));
}

#[test]
fn hostile_sources_are_refused_not_a_crash() {
    let env = CelEnv::default();
    let refused = |src: &str| {
        env.compile(src)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default()
    };
    // Each of these aborted the process with a stack overflow when a check file held it.
    let parens = format!("{}true{}", "(".repeat(2000), ")".repeat(2000));
    assert!(refused(&parens).contains("nests brackets"), "parens");
    let long = format!("1{} > 0", " + 1".repeat(50_000));
    assert!(refused(&long).contains("bytes long"), "long");
    // Brackets inside string literals are text, not nesting.
    assert!(env.compile(&format!("'{}' != ''", "(".repeat(100))).is_ok());
    // The worst a bounded source can be still parses on the parser's own thread.
    for src in worst_bounded_sources() {
        // Refused by depth, or compiled: never a crash.
        let _ = env.compile(&src);
    }
}

/// The worst a source within the bounds can be for the parser's recursion: long chains of
/// operators, selections and negations, at the size limit.
fn worst_bounded_sources() -> [String; 5] {
    let chain = |unit: &str, head: &str, tail: &str| {
        let n = (MAX_SOURCE - head.len() - tail.len()) / unit.len();
        format!("{head}{}{tail}", unit.repeat(n))
    };
    [
        chain(" + 1", "1", " > 0"),
        chain(".a", "xs", " == 1"),
        chain("!", "", "true"),
        chain("-", "", "1 < 0"),
        chain(" || false", "true", ""),
    ]
}

/// The evaluation threads compile the catalog's expressions inline (`spawn_scoped` gives them
/// the parser's stack): a long expression parses there, not on a thread of its own, and the
/// worst a bounded source can be still parses on that stack.
#[test]
fn a_thread_with_the_parse_stack_parses_inline() {
    let long = format!("1{} > 0", " + 1".repeat(INLINE_SOURCE));
    let parsed_on = |source: &str| {
        with_stack(source, 0, || {
            std::thread::current().name().map(String::from)
        })
        .expect("a thread for the parser")
    };
    assert_eq!(parsed_on(&long).as_deref(), Some("cel-parse"));
    std::thread::scope(|scope| {
        spawn_scoped(scope, "evaluate", || {
            assert_eq!(parsed_on(&long).as_deref(), Some("evaluate"));
            for src in worst_bounded_sources() {
                // Refused by depth, or compiled: never a crash.
                let _ = CelEnv::compile_builtin(&src);
            }
        })
        .join()
        .expect("the thread finishes");
    });
}

/// Review findings: a user-named accumulator (`optMap`'s) escaped the meter, and calls that
/// read their operands (`contains`, `in`, `==` on lists) were free inside a loop.
#[test]
fn no_call_escapes_the_meter() {
    let env = CelEnv::default();
    let big = "a".repeat(4000);
    let opt_map = run_over(
        &env,
        &format!("optional.of('{big}').optMap(s, xs.all(i, size(s + s) > 0)).value()"),
        200_000,
    )
    .unwrap_err();
    assert!(opt_map.contains("cost budget"), "{opt_map}");
    let contains = run_over(
        &env,
        &format!("['{big}'].all(s, xs.all(i, !s.contains('bb')))"),
        200_000,
    )
    .unwrap_err();
    assert!(contains.contains("cost budget"), "{contains}");
    let member = run_over(&env, "xs.all(a, a in xs)", 5_000).unwrap_err();
    assert!(member.contains("cost budget"), "{member}");
    let equal = run_over(&env, "xs.all(a, xs != [a])", 5_000).unwrap_err();
    assert!(equal.contains("cost budget"), "{equal}");
    // Comparing with a literal costs nothing extra: the catalog's common case.
    assert_eq!(
        run_over(&env, "xs.all(a, a != 7 && 'x' != 'y')", 3),
        Ok(Value::Bool(true))
    );
}

/// How a host function is charged is said once, beside its name in `HOST_FUNCTIONS`: the
/// meter's lists of standard-library calls name none of them (a host function listed there too
/// would be kept in step by hand), and the table's `Metering` is what the meter does.
#[test]
fn host_functions_are_metered_as_their_table_says() {
    for f in host_function_names() {
        assert!(
            !UNMETERED.contains(&f) && !LINEAR_IN_OPERANDS.contains(&f),
            "{f} is a host function: say how it is charged in HOST_FUNCTIONS, not in cost.rs"
        );
    }
    let env = CelEnv::default();
    let big = "a".repeat(4000);
    // `Operands`: each call is charged what it reads, so a search in a loop runs out of budget.
    let searched = run_over(
        &env,
        &format!("['{big}'].all(s, xs.all(i, !s.matches('b')))"),
        200_000,
    )
    .unwrap_err();
    assert!(searched.contains("cost budget"), "{searched}");
    // `Free`: nothing is charged for the calls themselves. The walk costs 400,000; were the two
    // calls charged one unit each, it would cost 1,200,000, past the budget.
    assert_eq!(
        run_over(&env, "xs.all(i, quantity('1').isInteger())", 400_000),
        Ok(Value::Bool(true))
    );
}

/// Review finding (while declaring each host function's charge): Kubernetes' `isSorted`,
/// `sum`, `find` and `findAll` walk their whole operand but were charged only what they return,
/// so one in a loop did quadratic work for a linear charge (`xs.all(i, xs.isSorted())` over
/// 2,000 elements: 4 million comparisons, 4,000 units).
#[test]
fn host_functions_that_walk_their_operand_are_charged_for_it() {
    let env = CelEnv::default();
    let big = "a".repeat(4000);
    for src in [
        "xs.all(i, xs.isSorted())".to_string(),
        "xs.all(i, xs.sum() >= 0)".to_string(),
        format!("['{big}'].all(s, xs.all(i, s.find('b') == ''))"),
        format!("['{big}'].all(s, xs.all(i, size(s.findAll('b')) == 0))"),
    ] {
        let err = run_over(&env, &src, 2_000).unwrap_err();
        assert!(err.contains("cost budget"), "{src}: {err}");
    }
    // Once, they fit.
    assert_eq!(
        run_over(&env, "xs.isSorted()", 2_000),
        Ok(Value::Bool(true))
    );
}

/// One budget for everything a check evaluates on one object: `forEach` items do not each
/// get a fresh one.
#[test]
fn a_budget_spans_several_evaluations() {
    let env = CelEnv::default();
    let each = env.compile("xs.all(a, a >= 0)").unwrap();
    let mut ctx = env.root_context();
    ctx.add_variable_from_value("xs", (0..400_000).map(Value::Int).collect::<Vec<_>>());
    // Alone, every evaluation fits.
    for _ in 0..3 {
        assert_eq!(each.execute(&ctx), Ok(Value::Bool(true)));
    }
    let budget = Budget::start();
    assert_eq!(each.execute(&ctx), Ok(Value::Bool(true)));
    assert_eq!(each.execute(&ctx), Ok(Value::Bool(true)));
    assert!(
        each.execute(&ctx)
            .unwrap_err()
            .to_string()
            .contains("cost budget")
    );
    assert!(budget.exhausted());
    drop(budget);
    assert_eq!(each.execute(&ctx), Ok(Value::Bool(true)));
}

#[test]
fn the_cost_meter_keeps_cel_semantics() {
    let env = CelEnv::default();
    for (src, want) in [
        ("xs.map(x, x * 2) == [0, 2, 4]", true),
        ("xs.filter(x, x > 0).size() == 2", true),
        ("xs.exists_one(x, x == 1)", true),
        ("xs.all(x, xs.exists(y, y == x))", true),
        ("[1, 2] + [3] == [1, 2, 3] && 'a' + 'b' == 'ab'", true),
        ("'a,b'.split(',').join('-') == 'a-b'", true),
        ("{'a': 1}.all(k, k == 'a')", true),
        ("xs.exists(x, x == 7)", false),
    ] {
        assert_eq!(run_over(&env, src, 3), Ok(Value::Bool(want)), "{src}");
    }
    // The meter resets per evaluation: a program near the budget runs again and again.
    for _ in 0..3 {
        assert_eq!(
            run_over(&env, "xs.all(a, xs.all(b, a + b >= 0))", 600),
            Ok(Value::Bool(true))
        );
    }
    // Errors keep their CEL meaning: `error || true` is true when the budget is not spent.
    assert_eq!(
        run_over(&env, "xs.exists(x, x / 0 == 1 || true)", 3),
        Ok(Value::Bool(true))
    );
}

#[test]
fn matches_is_bounded_and_keeps_cel_semantics() {
    let env = CelEnv::default();
    let run = |src: &str| {
        env.compile(src)
            .unwrap()
            .execute(&env.root_context())
            .map_err(|e| e.to_string())
    };
    assert_eq!(run("'abc'.matches('^a')"), Ok(Value::Bool(true)));
    assert_eq!(
        run("'abc'.matches('b')"),
        Ok(Value::Bool(true)),
        "unanchored"
    );
    assert_eq!(run("matches('abc', 'd')"), Ok(Value::Bool(false)));
    let started = std::time::Instant::now();
    let big = run("'ab'.matches('(a|b){20000}X')").unwrap_err();
    assert!(big.contains("too large"), "{big}");
    // Generous: refusing takes milliseconds; compiling it took seconds per object.
    assert!(started.elapsed() < std::time::Duration::from_secs(20));
    let invalid = run("'a'.matches('(a')").unwrap_err();
    assert!(
        invalid.contains("not a valid regular expression"),
        "{invalid}"
    );
}

/// Every built-in expression's tree comes from build.rs, and is exactly the one the Pratt parser
/// gives at run time (node ids included): the decoded tree is the program that would have been
/// compiled.
#[test]
fn every_built_in_expression_decodes_to_its_parse() {
    let checks = crate::checks::load(&[]).unwrap();
    let mut seen = 0;
    for check in &checks {
        for e in check.expressions() {
            let (decoded, reads) = prebuilt(&e.source)
                .unwrap_or_else(|| panic!("{}: no tree built for `{}`", check.id, e.source));
            // What build.rs made is what this build makes of the parser's tree at run time.
            let parsed = cel::parser::PrattParser::new().parse(&e.source).unwrap();
            let (metered, collected) = super::rewrite::prepare(parsed);
            assert!(decoded == metered, "{}: `{}`", check.id, e.source);
            assert!(
                reads
                    .iter()
                    .copied()
                    .eq(collected.iter().map(String::as_str)),
                "{}: `{}`: {reads:?}",
                check.id,
                e.source
            );
            assert!(e.reads().eq(collected.iter().map(String::as_str)));
            seen += 1;
        }
    }
    assert!(seen > 300, "{seen} expressions");
    // A source that is no built-in expression has no tree.
    assert!(prebuilt("1 + 1 == 3").is_none());
}

/// Every node and literal kind survives the round trip, and a damaged encoding is refused
/// (never a panic, never a different tree).
#[test]
fn trees_round_trip_and_damage_is_refused() {
    for source in [
        "{'a': 1, 2: [1, 2u, 3.5, -4, b'\\x00\\xff', null, true]}.a == 1",
        "x.all(k, v, v > 0) && [?a, b].size() == 2 && has(a.b) && a.?b.orValue(1) == 1",
        "Msg{field: 1, ?other: optional.none()}.field == 1 ? 'y\\u00e9' : \"\\n\"",
        "object.items.map(i, i.name).filter(n, n.startsWith('a')).exists_one(n, n == 'a')",
        "18446744073709551615u > 0u && -9223372036854775808 < 0 && 1e308 > 0.0",
    ] {
        let mut parser = cel::parser::PrattParser::new();
        parser.enable_optional_syntax = true;
        let Ok(tree) = parser.parse(source) else {
            panic!("{source}");
        };
        let mut encoded = Vec::new();
        tree_code::encode(&tree, &mut encoded);
        assert!(tree_code::decode(&encoded) == Some(tree), "{source}");
        for cut in 0..encoded.len() {
            assert!(
                tree_code::decode(&encoded[..cut]).is_none(),
                "{source}: cut at {cut}"
            );
        }
        let mut longer = encoded.clone();
        longer.push(0);
        assert!(tree_code::decode(&longer).is_none());
        for i in 0..encoded.len() {
            let mut damaged = encoded.clone();
            damaged[i] ^= 0xff;
            let _ = tree_code::decode(&damaged);
        }
    }
    // A length past the end allocates nothing; a nesting past the bound ends the decoding.
    assert!(tree_code::decode(&[0, 3, 0xff, 0xff, 0xff, 0xff, 0x0f]).is_none());
    let deep: Vec<u8> = std::iter::repeat_n([0u8, 6], 5_000).flatten().collect();
    assert!(tree_code::decode(&deep).is_none());
}

/// Review 29: two ipBlocks `0.0.0.0/1` and `128.0.0.0/1` admit every IPv4 address, and passed
/// network-policy-default-deny, which looked for a `/0` only.
#[test]
fn cidrs_that_together_cover_every_address() {
    assert!(cover_every_address(&["0.0.0.0/1", "128.0.0.0/1"]));
    assert!(cover_every_address(&["0.0.0.0/0"]));
    assert!(cover_every_address(&["::/1", "8000::/1"]));
    assert!(cover_every_address(&[
        "0.0.0.0/2",
        "64.0.0.0/2",
        "128.0.0.0/1",
        "10.0.0.0/8"
    ]));
    assert!(!cover_every_address(&["0.0.0.0/1", "128.0.0.0/2"]));
    assert!(!cover_every_address(&["0.0.0.0/1", "::/1", "8000::/2"]));
    assert!(!cover_every_address(&["10.0.0.0/8", "not a cidr"]));
    assert!(!cover_every_address(&[]));
    let env = CelEnv::default();
    let p = env
        .compile("cidrsCoverEveryAddress(['0.0.0.0/1', '128.0.0.0/1'])")
        .unwrap();
    assert_eq!(p.execute(&env.root_context()).unwrap(), Value::Bool(true));
}

/// A host function reads its argument as JSON straight from cel's value (`val_to_json`): the
/// same JSON as converting it to a `Value` first and that to JSON (`cel_to_json`, what the
/// functions did), for every kind of value an expression can pass, those JSON lacks included.
#[test]
fn arguments_read_as_json_as_through_a_value() {
    let env = CelEnv::default();
    let ctx = env.root_context();
    for src in [
        "null",
        "true",
        "-1",
        "18446744073709551615u",
        "1.5",
        "'a'",
        "[1, 'a', [null], {}]",
        "{'a': {'b': [1, 2.5]}, 'c': {}}",
        "{1: 'an int key', 'b': 2}",
        "{true: 1}",
        "b'bytes'",
        "duration('1s')",
        "timestamp('2026-01-01T00:00:00Z')",
        "quantity('1Gi')",
        "int",
    ] {
        let program = env.compile(src).unwrap();
        let val = program.execute_val(&ctx).unwrap();
        let direct = val_to_json(val.as_ref()).map_err(|e| e.to_string());
        let through = Value::try_from(val.as_ref())
            .map(|v| cel_to_json(&v))
            .map_err(|e| e.to_string());
        assert_eq!(direct, through, "{src}");
    }
    // An object as checks are given it (converted once from JSON): its JSON back.
    let json = serde_json::json!({
        "spec": {"containers": [{"name": "a", "ports": [{"containerPort": 80}]}]},
        "none": null, "half": 1.5, "big": 18_446_744_073_709_551_615_u64, "on": true,
    });
    let val = crate::facts::values::SharedVal::from_json(&json);
    assert_eq!(val_to_json(&val).unwrap(), json);
}

/// The Kubernetes variables answer a qualified name (`object.spec.replicas`) in one step
/// (`engine::kubernetes::select_path`), splitting it at its dots: right only while no field
/// name holds a dot. cel's backtick-quoted fields (`` a.`b.c` ``) are the one way to write
/// one; both parsers refuse them, so a check cannot.
#[test]
fn no_field_name_holds_a_dot() {
    let src = "object.metadata.`app.kubernetes.io/name` == 'x'";
    assert!(CelEnv::default().compile(src).is_err());
    assert!(CelEnv::compile_builtin(src).is_err());
}

/// The fast path (`fast.rs`) gives cel's value, and charges the cost meter what cel charges,
/// wherever it answers; where it does not, cel does. Each expression is evaluated both ways on
/// the same variables (an object as checks get it, converted once from JSON): the semantics it
/// must not guess (numbers of two types, null against a map, errors that `||` absorbs, the
/// size of a string in code points, a map's keys) are among them.
#[test]
fn the_fast_path_agrees_with_cel() {
    let env = CelEnv::default();
    let object = crate::facts::values::SharedVal::from_json(&serde_json::json!({
        "metadata": {"name": "mlsdm", "labels": {"app": "mlsdm", "tier": "api"}},
        "spec": {
            "replicas": 3,
            "ratio": 0.5,
            "containers": [
                {"name": "a", "image": "x:1", "ports": [{"containerPort": 8000, "name": "http"}]},
                {"name": "b", "image": "é:2", "env": [{"name": "K", "value": "v"}]},
            ],
            "nothing": null,
            "flag": true,
            "many": {"a": 1, "b": 2, "c": 3, "d": 4, "e": 5, "f": 6, "g": 7, "h": 8, "i": 9, "j": 10},
        },
    }));
    let exprs = [
        "object.spec.replicas >= 3 && object.spec.replicas < 10",
        "object.spec.replicas == 3u",
        "object.spec.replicas == 3.0",
        "object.spec.ratio == 0.5",
        "object.spec.nothing == null && object.spec.containers != null",
        "object.metadata != null",
        "object.metadata.name == null",
        "has(object.spec.replicas) && !has(object.spec.missing)",
        "has(object.spec.containers[0].name)",
        "has(object.metadata.name.x)",
        "object.spec.missing == 1 || true",
        "true || object.spec.missing == 1",
        "object.spec.missing == 1 && false",
        "object.spec.containers.all(c, c.image.startsWith('x') || c.name == 'b')",
        "object.spec.containers.exists(c, has(c.ports) && c.ports.exists(p, p.containerPort == 8000))",
        "object.spec.containers.exists_one(c, c.name.endsWith('b'))",
        "object.spec.containers.map(c, c.name) == ['a', 'b']",
        "object.spec.containers.filter(c, c.name == 'a').size() == 1",
        "object.metadata.labels.all(k, k in ['app', 'tier'])",
        "object.metadata.labels.exists(k, object.metadata.labels[k] == 'api')",
        "'app' in object.metadata.labels && !('zone' in object.metadata.labels)",
        "object.metadata.name in ['mlsdm', 'other'] && !(object.metadata.name in [])",
        "object.metadata.name in ['mlsdm', 1]",
        "size(object.spec.containers[1].image) == 3 && object.spec.containers[1].image.size() == 3",
        "size(object.metadata.labels) + 1 == 3",
        "object.spec.many.j == 10 && object.spec.many.a + object.spec.many.b == 3",
        "object.spec.many.exists(k, k == 'j') && size(object.spec.many) == 10",
        "object.spec.replicas - 4 < 0 ? 'low' : 'ok'",
        "object.spec.flag ? object.metadata.name : 'none'",
        "object.spec.replicas ? 1 : 2",
        "!object.spec.replicas",
        "object.metadata.name < 'n' && 'b' > 'a' && 1u <= 2u",
        "object.metadata.name.contains('sd') && !object.metadata.name.contains('x')",
        "9223372036854775807 + object.spec.replicas > 0",
        "object.spec.containers[0].name + '!' == 'a!'",
        "type(object.spec.replicas) == int && type(object.metadata) == map",
        "type(object.metadata.name) == string && type(object.spec.containers) == list",
        "type(object.spec.nothing) == null_type && type(object.spec.flag) == bool",
        "type(object.spec.ratio) == double && type(1u) == uint && type(object) != string",
        "type(object.spec.replicas) == string || type(object.spec.replicas) == int",
        "object.metadata['name'] == 'mlsdm' && object.spec.containers[1].name == 'b'",
        "object.spec.containers[2].name == 'c' || true",
        "object.spec.containers[-1].name == 'c'",
        "object.metadata.labels['zone'] == 'a'",
        "object.metadata.labels['zone'] == 'a' || object.metadata.labels['app'] == 'mlsdm'",
        "object.spec.missing.x == 1 || object.spec.flag",
        "object.spec.missing.x == 1 || !object.spec.flag",
        "!(object.spec.missing == 1)",
        "object.spec.replicas && true",
        "object.spec.replicas || true",
        "quantity('1Gi').isGreaterThan(quantity('1Mi')) && object.spec.flag",
        "object.spec.containers.all(c, quantity('1').isLessThan(quantity('2')))",
        "string(object.spec.replicas) == '3' && double(object.spec.replicas) > 2.5",
        "object.spec.containers.exists(c, c.missing == 1)",
        "object.spec.containers.all(c, c.missing == 1)",
        "object.spec.containers.map(c, has(c.env) ? c.env.map(e, {'container': c.name, 'env': e}) : []).flatten().size() == 1",
        "object.spec.containers.map(c, has(c.env) ? c.env.map(e, {'container': c.name, 'env': e}) : []).flatten()[0].env.value == 'v'",
        "[[1], 2, [[3]]].flatten() == [1, 2, [3]] && [].flatten() == []",
        "{'a': 1, 'a': 2}.a == 2 || true",
        "{1: 'x'}[1] == 'x' && {'k': object.spec.containers[0]}.k.name == 'a'",
        "quantity(string(object.spec.replicas)).compareTo(quantity('2')) == 1 && quantity('1Gi').isGreaterThan(quantity('1Mi'))",
        "quantity('500m').isLessThan(1) && quantity('2').compareTo(2) == 0 && quantity('x') == 1 || true",
        "quantity('x').compareTo(quantity('1')) == 0",
        "object.spec.containers.all(c, quantity(string(size(c.name))).compareTo(quantity('1')) >= 0)",
        "string(object.metadata.name) == 'mlsdm' && string(1u) == '1' && string(true) == 'true' && string(1.5) == '1.5'",
        "object.spec.replicas in [1, 2, 3] && !(object.spec.replicas in [1u]) && 3 in object.spec.containers.map(c, 3)",
        "object.spec.replicas in [1.0, 3.0]",
        "null in [null] && object.metadata.name in ['x', object.metadata.name]",
        "object.spec.containers[0].image.split(':').exists(p, p == '1') && {'a': 1, 'b': 2}.all(k, k in ['a', 'b']) && [1, 2].map(x, x + 1).all(x, x > 1)",
        "'container ' + object.spec.containers[1].name + ' runs ' + object.spec.containers[1].image",
        "object.metadata.name + 1 == 'x' || true",
        "object.spec.containers.map(c, c.name + '!') == ['a!', 'b!']",
        "'b' in object.spec.containers.map(c, c.name) && size(object.spec.containers.filter(c, c.name != 'a')) == 1",
        "object.spec.containers.filter(c, has(c.env)).map(c, c.env[0].value)[0] == 'v'",
        "object.spec.containers[0].image.split(':')[1] == '1' && 'a:b:c'.split(':').size() == 3",
        "'a::b'.split('::') == ['a', 'b'] && 'abc'.split('') == ['a', 'b', 'c']",
        "{'k': object.metadata.name}.k == 'mlsdm' && has({'k': 1}.k) && !has({'k': 1}.j)",
        "[[1, 2], [3]].map(x, x.size())[1] == 1 && [1, 2, 3][3] == 0",
        "object.spec.containers.map(c, c.name).size() + [1].size() == 3",
        "object.spec.containers.all(c, c.name.size() > 0) && [1, 2, 3].all(x, x > 0)",
        "[1, 2, 3].exists(x, x / (x - 1) > 1)",
        "object.spec.containers[0].ports[0].name",
        "object.metadata.name",
        "object.spec.replicas",
        "object.spec.nothing",
    ];
    let mut answered = 0;
    for src in exprs {
        let program = env.compile(src).unwrap();
        let mut ctx = env.root_context();
        ctx.add_variable_as_val("object", Box::new(object.clone()));
        let cel = {
            let _cel_only = FastPath::set(false);
            let value = program.execute(&ctx).map_err(|e| e.to_string());
            (value, SPENT.with(std::cell::Cell::get))
        };
        SPENT.with(|s| s.set(0));
        let fast = fast::execute(program.metered_tree(), &ctx);
        let fast_spent = SPENT.with(std::cell::Cell::get);
        if let Some(value) = fast {
            answered += 1;
            assert_eq!((value.map_err(|e| e.to_string()), fast_spent), cel, "{src}");
        }
        // Whatever the fast path did, the public entry point gives cel's answer.
        assert_eq!(
            program.execute(&ctx).map_err(|e| e.to_string()),
            cel.0,
            "{src}"
        );
    }
    // Most of these are the fast path's to answer (a test that it is not silently off).
    assert!(
        answered >= 25,
        "the fast path answered {answered} of {}",
        exprs.len()
    );
}

/// Two findings of a review of the fast path, each a way it answered where cel answers
/// otherwise: an optional container's key evaluated (cel never evaluates it, so an error
/// there stopped `==` from evaluating, and charging, its other side), and a map cel made
/// copied into cel's scope for a part handed to cel (a copy lists its keys in another order,
/// so `m` and `dyn(m)` disagreed where cel's one binding makes them agree).
#[test]
fn the_fast_path_binds_no_copy_and_leaves_optional_containers_to_cel() {
    let env = CelEnv::default();
    let ctx = env.root_context();
    let keys = "{'a': 1, 'b': 2, 'c': 3, 'd': 4, 'e': 5, 'f': 6, 'g': 7, 'h': 8, 'i': 9, 'j': 10}";
    for src in [
        "optional.none()[[][0]] == [1, 2, 3].map(x, x).size() || true".to_string(),
        format!("[{keys}].all(m, m.map(k, k)[0] == dyn(m).map(k, k)[0])"),
    ] {
        let program = env.compile(&src).unwrap();
        let cel = {
            let _cel_only = FastPath::set(false);
            let value = program.execute(&ctx).map_err(|e| e.to_string());
            (value, SPENT.with(std::cell::Cell::get))
        };
        // Each run builds its maps anew, each with its own order: many runs, each cel's.
        for _ in 0..20 {
            SPENT.with(|s| s.set(0));
            let fast = fast::execute(program.metered_tree(), &ctx);
            let spent = SPENT.with(std::cell::Cell::get);
            if let Some(value) = fast {
                assert_eq!((value.map_err(|e| e.to_string()), spent), cel, "{src}");
            }
        }
    }
}

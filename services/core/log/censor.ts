/**
 * The log's redaction net in one pass: censors the fields a set of pino-style paths names
 * (`body`, `*.body`, `req.headers.authorization`, `req.headers["x-signalwire-signature"]`),
 * copying only what it censors. pino's own `redact` clones every object-valued field of every
 * line and re-parses each path on every call; this walks the compiled paths once per line and
 * allocates nothing when there is nothing to censor (docs/benchmarks.md, "The log's redaction net
 * in one pass").
 *
 * logger.ts runs it as pino's `formatters.log`, before pino's serializers, so it also censors a raw
 * object a serializer would read (a request's own `body`), on objects interpolated into a message,
 * and on the bindings of every child logger.
 * A censored object is copied with its prototype and every own property (message and stack of an
 * Error, a request's symbols), so the serializer and `toJSON` see it as before, with the field replaced.
 */

/** One step of the compiled paths: a field censored here, or fields below it. */
interface PathNode {
  /** The field itself is censored, whatever it holds. */
  censor: boolean;
  /** Named fields below this one. */
  children: Map<string, PathNode>;
  /** `children` as a list, once compiled (what the walk reads). */
  named: Array<[string, PathNode]>;
  /** Fields below any field at this level (`*.body`): merged into `children` of each named one. */
  any?: PathNode;
}

const newNode = (): PathNode => ({ censor: false, children: new Map(), named: [] });

/** Splits `req.headers["x-signalwire-signature"]` into `req`, `headers`, `x-signalwire-signature`. */
export function pathSegments(path: string): string[] {
  const segments: string[] = [];
  const rx = /([^.[\]]+)|\[\s*(?:"([^"]*)"|'([^']*)')\s*\]/g;
  let consumed = 0;
  for (const m of path.matchAll(rx)) {
    const between = path.slice(consumed, m.index);
    if (between !== '' && between !== '.') throw new Error(`redaction path "${path}" cannot be parsed`);
    segments.push(m[1] ?? m[2] ?? m[3] ?? '');
    consumed = m.index + m[0].length;
  }
  if (consumed !== path.length || segments.length === 0) throw new Error(`redaction path "${path}" cannot be parsed`);
  return segments;
}

function insert(node: PathNode, segments: readonly string[]): void {
  const [head, ...rest] = segments;
  if (head === undefined) {
    node.censor = true;
    return;
  }
  let next: PathNode;
  if (head === '*') next = node.any ??= newNode();
  else {
    next = node.children.get(head) ?? newNode();
    node.children.set(head, next);
  }
  insert(next, rest);
}

/** A node that censors what either does (a named field also gets what `*` names at its level). */
function merge(a: PathNode, b: PathNode): PathNode {
  const merged: PathNode = { censor: a.censor || b.censor, children: new Map(a.children), named: [] };
  for (const [key, child] of b.children) merged.children.set(key, merged.children.has(key) ? merge(merged.children.get(key)!, child) : child);
  const any = a.any && b.any ? merge(a.any, b.any) : (a.any ?? b.any);
  if (any) merged.any = any;
  return merged;
}

/** Resolves `*` at each level: a named field's node includes the wildcard's, and `any` stays for the other fields. */
function resolve(node: PathNode): PathNode {
  const resolved: PathNode = { censor: node.censor, children: new Map(), named: [] };
  for (const [key, child] of node.children) resolved.children.set(key, resolve(node.any ? merge(child, node.any) : child));
  resolved.named = [...resolved.children];
  if (node.any) resolved.any = resolve(node.any);
  return resolved;
}

/**
 * Copies `value` with its prototype and every own property, `patch`'s fields replaced (as plain,
 * enumerable data). An own accessor is copied as the value it reads on `value` (V8's `stack` of an
 * Error is one, and reads state the copy would not have), or left out if reading it throws.
 */
function copyWith(value: object, patch: Map<string, unknown>): object {
  const descriptors = Object.getOwnPropertyDescriptors(value) as Record<PropertyKey, PropertyDescriptor>;
  for (const key of Reflect.ownKeys(descriptors)) {
    const d = descriptors[key]!;
    if (!d.get && !d.set) continue;
    try {
      descriptors[key] = { value: Reflect.get(value, key), enumerable: d.enumerable ?? false, writable: true, configurable: true };
    } catch {
      // A getter that throws is left out of the copy: a log line must never throw into its caller.
      delete descriptors[key];
    }
  }
  for (const [key, replacement] of patch) descriptors[key] = { value: replacement, enumerable: true, writable: true, configurable: true };
  return Object.create(Object.getPrototypeOf(value), descriptors) as object;
}

/** The censored or descended value of one field, or the field itself when nothing in it is censored. */
function censorField(field: unknown, node: PathNode, censor: string): unknown {
  if (node.censor) return censor;
  if (field !== null && typeof field === 'object' && !Array.isArray(field) && (node.named.length > 0 || node.any)) return censorObject(field, node, censor);
  return field;
}

/** `value` with what `node` names censored: `value` itself when nothing is, else a copy. */
function censorObject(value: object, node: PathNode, censor: string): object {
  const fields = value as Record<string, unknown>;
  let patch: Map<string, unknown> | undefined;
  if (node.any) {
    // Every own field is a candidate: named ones with their own node, the rest with the wildcard's.
    for (const key in fields) {
      if (!Object.hasOwn(fields, key)) continue;
      const field = fields[key];
      if (field === undefined) continue;
      const next = censorField(field, node.children.get(key) ?? node.any, censor);
      if (next !== field) (patch ??= new Map()).set(key, next);
    }
  } else {
    for (let i = 0; i < node.named.length; i++) {
      const [key, child] = node.named[i]!;
      if (!(key in fields)) continue;
      const field = fields[key];
      if (field === undefined) continue;
      const next = censorField(field, child, censor);
      if (next !== field) (patch ??= new Map()).set(key, next);
    }
  }
  return patch ? copyWith(value, patch) : value;
}

/**
 * Compiles pino-style redaction paths (`a`, `a.b`, `*.b`, `a["b-c"]`; `*` for any one field) into
 * a function that returns its argument with those fields replaced by `censor`, a copy only where
 * something was censored. Arrays are not looked into; a field holding `undefined` is left alone
 * (it is not written anyway). Throws for a path it cannot parse.
 */
export function compileCensor(paths: readonly string[], censor: string): <T extends object>(value: T) => T {
  const root = newNode();
  for (const path of paths) insert(root, pathSegments(path));
  const compiled = resolve(root);
  return <T extends object>(value: T): T => censorObject(value, compiled, censor) as T;
}

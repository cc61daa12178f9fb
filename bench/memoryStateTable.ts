// An in-memory StateTable for the benchmark's "without the store" run: the same conditional
// semantics as DynamoDB for the expressions the services use (SET / ADD / REMOVE; AND, OR,
// parentheses, =, <>, <, <=, >, >=, attribute_exists, attribute_not_exists), no network.
// It is a measuring stick, not a store: one process, nothing shared, nothing kept.
import type { StateItem, StateTable, StateUpdate } from '../services/core/state/table.ts';

type Item = Record<string, unknown>;
type Ctx = { names: Record<string, string>; values: Record<string, unknown> };

function tokenize(expr: string): string[] {
  return expr.match(/attribute_not_exists|attribute_exists|<>|<=|>=|[()=<>,]|[#:]?[A-Za-z_][A-Za-z0-9_-]*(?:\.[#]?[A-Za-z_][A-Za-z0-9_-]*)*/g) ?? [];
}

function path(token: string, ctx: Ctx): string[] {
  return token.split('.').map((part) => (part.startsWith('#') ? ctx.names[part]! : part));
}

function read(item: Item | undefined, p: string[]): unknown {
  let v: unknown = item;
  for (const k of p) v = v && typeof v === 'object' ? (v as Item)[k] : undefined;
  return v;
}

function operand(token: string, item: Item | undefined, ctx: Ctx): unknown {
  return token.startsWith(':') ? ctx.values[token] : read(item, path(token, ctx));
}

function compare(a: unknown, op: string, b: unknown): boolean {
  if (a === undefined || b === undefined) return op === '<>' ? a !== b : false;
  switch (op) {
    case '=':
      return a === b;
    case '<>':
      return a !== b;
    case '<':
      return (a as number) < (b as number);
    case '<=':
      return (a as number) <= (b as number);
    case '>':
      return (a as number) > (b as number);
    default:
      return (a as number) >= (b as number);
  }
}

/** Evaluates a condition expression against an item (undefined: no item). */
function evaluate(expr: string, item: Item | undefined, ctx: Ctx): boolean {
  const t = tokenize(expr);
  let i = 0;
  const or = (): boolean => {
    let v = and();
    while (t[i] === 'OR') {
      i++;
      const r = and();
      v = v || r;
    }
    return v;
  };
  const and = (): boolean => {
    let v = unit();
    while (t[i] === 'AND') {
      i++;
      const r = unit();
      v = v && r;
    }
    return v;
  };
  const unit = (): boolean => {
    const tok = t[i++]!;
    if (tok === '(') {
      const v = or();
      i++;
      return v;
    }
    if (tok === 'attribute_exists' || tok === 'attribute_not_exists') {
      const p = t[i + 1]!;
      i += 3;
      const exists = read(item, path(p, ctx)) !== undefined;
      return tok === 'attribute_exists' ? exists : !exists;
    }
    const op = t[i++]!;
    const right = t[i++]!;
    return compare(operand(tok, item, ctx), op, operand(right, item, ctx));
  };
  return or();
}

/** Applies an update expression to a copy of the item. */
function apply(expr: string, item: Item, ctx: Ctx): Item {
  const out = structuredClone(item);
  const write = (p: string[], value: unknown): void => {
    let target = out;
    for (const k of p.slice(0, -1)) target = (target[k] ??= {}) as Item;
    if (value === undefined) delete target[p.at(-1)!];
    else target[p.at(-1)!] = value;
  };
  for (const clause of expr.split(/\b(?=SET |ADD |REMOVE )/)) {
    const [verb, ...rest] = clause.trim().split(/\s+/);
    const body = rest.join(' ');
    for (const part of body.split(',').map((s) => s.trim()).filter(Boolean)) {
      if (verb === 'SET') {
        const [lhs, rhs] = part.split('=').map((s) => s.trim());
        write(path(lhs!, ctx), structuredClone(operand(rhs!, out, ctx)));
      } else if (verb === 'ADD') {
        const [lhs, rhs] = part.split(/\s+/);
        write(path(lhs!, ctx), Number(read(out, path(lhs!, ctx)) ?? 0) + Number(ctx.values[rhs!]));
      } else if (verb === 'REMOVE') {
        write(path(part, ctx), undefined);
      }
    }
  }
  return out;
}

/** A StateTable in this process's memory, counting calls like the DynamoDB one. */
export function memoryStateTable(name: string): StateTable {
  const items = new Map<string, Item>();
  let calls = 0;
  const ctxOf = (c?: Omit<StateUpdate, 'update'>): Ctx => ({ names: c?.names ?? {}, values: c?.values ?? {} });
  return {
    name,
    get calls() {
      return calls;
    },
    async get(pk) {
      calls++;
      const item = items.get(pk);
      return item ? (structuredClone(item) as StateItem) : undefined;
    },
    async put(item, condition) {
      calls++;
      if (condition?.condition && !evaluate(condition.condition, items.get(item.pk), ctxOf(condition))) return false;
      items.set(item.pk, structuredClone(item));
      return true;
    },
    async putMany(batch) {
      calls++;
      for (const item of batch) items.set(item.pk, structuredClone(item));
    },
    async update(pk, change) {
      calls++;
      const current = items.get(pk);
      if (change.condition && !evaluate(change.condition, current, ctxOf(change))) return undefined;
      const next = apply(change.update, current ?? { pk }, ctxOf(change));
      items.set(pk, next);
      return structuredClone(next) as StateItem;
    },
    async delete(pk, condition) {
      calls++;
      if (condition?.condition && !evaluate(condition.condition, items.get(pk), ctxOf(condition))) return false;
      items.delete(pk);
      return true;
    },
    async check() {},
    async close() {},
  };
}

// Data forms (XEP-0004): typed fields in, <x xmlns='jabber:x:data'/> out, and a submitted form read
// back as values by field name. Room configuration (XEP-0045), room info (XEP-0128) and archive
// queries (XEP-0313) are all forms.
import { x } from '../xml/builder.ts';
import type { XmlElement } from '../xml/element.ts';
import { NS } from '../xml/namespaces.ts';

export type FieldType = 'boolean' | 'fixed' | 'hidden' | 'jid-multi' | 'jid-single' | 'list-multi' | 'list-single' | 'text-multi' | 'text-private' | 'text-single';

export interface Field {
  var?: string;
  type?: FieldType;
  label?: string;
  /** One value, or several (the -multi types). Booleans are written '1' / '0'. */
  value?: string | boolean | number | string[];
  options?: Array<{ value: string; label?: string }>;
}

export interface FormOptions { type: 'form' | 'submit' | 'result' | 'cancel'; title?: string; instructions?: string; formType?: string }

/** A form element; `formType` becomes the hidden FORM_TYPE field first (XEP-0068). */
export function dataForm(o: FormOptions, fields: Field[]): XmlElement {
  const all: Field[] = o.formType ? [{ var: 'FORM_TYPE', type: 'hidden', value: o.formType }, ...fields] : fields;
  return x('x', { xmlns: NS.DATA_FORMS, type: o.type },
    o.title !== undefined ? x('title', null, o.title) : null,
    o.instructions !== undefined ? x('instructions', null, o.instructions) : null,
    all.map((f) => x('field', { var: f.var, type: f.type, label: f.label },
      valuesOf(f.value).map((v) => x('value', null, v)),
      (f.options ?? []).map((op) => x('option', { label: op.label }, x('value', null, op.value))))));
}

function valuesOf(v: Field['value']): string[] {
  if (v === undefined) return [];
  if (Array.isArray(v)) return v;
  if (typeof v === 'boolean') return [v ? '1' : '0'];
  return [String(v)];
}

/** A submitted form's values by field name (every <value/> of each field), and its FORM_TYPE. */
export interface Submitted { type: string; formType: string | undefined; values: Map<string, string[]> }

/** Reads the first data form among `parent`'s children, or undefined if there is none. */
export function readForm(parent: XmlElement): Submitted | undefined {
  const form = parent.child('x', NS.DATA_FORMS);
  if (!form) return undefined;
  const values = new Map<string, string[]>();
  for (const f of form.getChildren('field', NS.DATA_FORMS)) {
    const name = f.attr('var');
    if (name !== undefined) values.set(name, f.getChildren('value', NS.DATA_FORMS).map((v) => v.text()));
  }
  return { type: form.attr('type') ?? 'form', formType: values.get('FORM_TYPE')?.[0], values };
}

/** XEP-0004 §3.3: boolean values are '1'/'true' or '0'/'false'. Undefined when absent or not a boolean. */
export function formBoolean(s: Submitted, name: string): boolean | undefined {
  const v = s.values.get(name)?.[0];
  if (v === '1' || v === 'true') return true;
  if (v === '0' || v === 'false') return false;
  return undefined;
}

export function formText(s: Submitted, name: string): string | undefined {
  const v = s.values.get(name);
  return v === undefined ? undefined : v.join('\n');
}

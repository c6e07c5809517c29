// vcard-temp (XEP-0054) to vCard4 in XML (RFC 6351, as XEP-0292 carries it): the properties clients
// show. The vcard module keeps one vCard per account, in vcard-temp, and hands it out in both forms.
// PHOTO's image is the PEP avatar's business (XEP-0084, XEP-0398); a PHOTO link is kept.
import { x } from '../xml/builder.ts';
import type { XmlElement } from '../xml/element.ts';
import { NS } from '../xml/namespaces.ts';

const TYPES = ['HOME', 'WORK', 'VOICE', 'FAX', 'PAGER', 'CELL', 'VIDEO', 'TEXT'] as const;

/** vCard4's <parameters><type/></parameters> from vcard-temp's type flags (<HOME/>, <WORK/>…). */
function parameters(el: XmlElement): XmlElement | null {
  const types = TYPES.filter((t) => el.child(t, NS.VCARD)).map((t) => t === 'CELL' ? 'cell' : t.toLowerCase());
  return types.length ? x('parameters', null, x('type', null, types.map((t) => x('text', null, t)))) : null;
}

const text = (el: XmlElement, name: string): string => el.getChildText(name, NS.VCARD)?.trim() ?? '';

/** A vCard4 <vcard/> with what the vcard-temp <vCard/> holds (empty for none). */
export function vcard4Of(temp: XmlElement | undefined): XmlElement {
  const out: XmlElement[] = [];
  if (!temp) return x('vcard', { xmlns: NS.VCARD4 });
  const simple = (from: string, to: string, kind: 'text' | 'uri' | 'date') => {
    for (const v of temp.getChildren(from, NS.VCARD).map((c) => c.text().trim()).filter(Boolean)) out.push(x(to, null, x(kind, null, v)));
  };
  simple('FN', 'fn', 'text');
  const n = temp.child('N', NS.VCARD);
  if (n) {
    out.push(x('n', null, x('surname', null, text(n, 'FAMILY')), x('given', null, text(n, 'GIVEN')), x('additional', null, text(n, 'MIDDLE')),
      x('prefix', null, text(n, 'PREFIX')), x('suffix', null, text(n, 'SUFFIX'))));
  }
  simple('NICKNAME', 'nickname', 'text');
  for (const p of temp.getChildren('PHOTO', NS.VCARD)) { const link = text(p, 'EXTVAL'); if (link) out.push(x('photo', null, x('uri', null, link))); }
  simple('BDAY', 'bday', 'date');
  for (const a of temp.getChildren('ADR', NS.VCARD)) {
    out.push(x('adr', null, parameters(a), x('pobox', null, text(a, 'POBOX')), x('ext', null, text(a, 'EXTADD')), x('street', null, text(a, 'STREET')),
      x('locality', null, text(a, 'LOCALITY')), x('region', null, text(a, 'REGION')), x('code', null, text(a, 'PCODE')), x('country', null, text(a, 'CTRY'))));
  }
  for (const t of temp.getChildren('TEL', NS.VCARD)) { const num = text(t, 'NUMBER'); if (num) out.push(x('tel', null, parameters(t), x('uri', null, `tel:${num}`))); }
  for (const e of temp.getChildren('EMAIL', NS.VCARD)) { const id = text(e, 'USERID'); if (id) out.push(x('email', null, parameters(e), x('text', null, id))); }
  for (const j of temp.getChildren('JABBERID', NS.VCARD).map((c) => c.text().trim()).filter(Boolean)) out.push(x('impp', null, x('uri', null, `xmpp:${j}`)));
  simple('TZ', 'tz', 'text');
  simple('TITLE', 'title', 'text');
  simple('ROLE', 'role', 'text');
  for (const o of temp.getChildren('ORG', NS.VCARD)) { const name = text(o, 'ORGNAME'); if (name) out.push(x('org', null, x('text', null, name))); }
  simple('DESC', 'note', 'text');
  simple('URL', 'url', 'uri');
  return x('vcard', { xmlns: NS.VCARD4 }, out);
}

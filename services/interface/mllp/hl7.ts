// HL7 v2 message handling for MLLP: character set (MSH-18), parsing (via @medplum/core,
// which honours the message's own encoding characters from MSH-1/MSH-2), escaping of the
// text we write, and building and reading acknowledgements (MSA, ERR).
import { randomUUID } from 'node:crypto';
import { Hl7Context, Hl7Message, Hl7Segment } from '@medplum/core';
import iconvModule from 'iconv-lite';

// iconv-lite's types declare its API as the namespace's `default`; at run time it is the module itself.
const iconv = iconvModule as unknown as typeof iconvModule.default;

/** A parsed inbound HL7 v2 message and the facts the relay needs from its header (never logged). */
export interface ParsedHl7 {
  /** The parsed message (encoding characters from its own MSH). */
  message: Hl7Message;
  /** MSH-10, message control id. */
  controlId: string;
  /** MSH-4 sending facility, first component (namespace id). */
  sendingFacility: string;
  /** MSH-18 as sent ('' when absent). */
  charset: string;
  /** True when the payload is UTF-8 (or ASCII), so it travels as utf8 text in the envelope. */
  utf8: boolean;
  /**
   * Enhanced acknowledgement mode: MSH-15 (accept ack type) is valued, so we answer CA/CE/CR.
   * The relay always answers this commit ACK, whatever MSH-15 names (NE and ER too): the ACK
   * is the partner's only sign the message is on SQS, and no application ACK ever follows.
   */
  enhanced: boolean;
}

/** Why a message cannot be read (the code goes into ERR and the log; the text never holds content). */
export class Hl7ParseError extends Error {
  /** `CR_MLLP_MESSAGE_MALFORMED` or `CR_MLLP_CHARSET_UNSUPPORTED`. */
  readonly code: 'CR_MLLP_MESSAGE_MALFORMED' | 'CR_MLLP_CHARSET_UNSUPPORTED';
  /** HL7 table 0357 code for ERR-3: 101 (required field missing), 103 (character set), else 100. */
  readonly hl7Code: 100 | 101 | 103;

  constructor(code: Hl7ParseError['code'], message: string, hl7Code?: 101) {
    super(message);
    this.name = 'Hl7ParseError';
    this.code = code;
    this.hl7Code = code === 'CR_MLLP_CHARSET_UNSUPPORTED' ? 103 : (hl7Code ?? 100);
  }
}

// HL7 table 0211 (alternate character sets) → iconv-lite encoding names. UTF-16/32 and the
// ISO 2022 sets cannot be framed byte-transparently here and are refused with AR.
const CHARSETS: Record<string, string> = {
  '': 'utf-8',
  ASCII: 'utf-8',
  'UNICODE UTF-8': 'utf-8',
  ...Object.fromEntries([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 14, 15, 16].map((n) => [`8859/${n}`, `iso-8859-${n}`])),
  'GB 18030-2000': 'gb18030',
  'KS X 1001': 'euc-kr',
  'BIG-5': 'big5',
};

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** The iconv-lite name for an MSH-18 value, or undefined when the relay does not support it. */
export function charsetFor(msh18: string): string | undefined {
  return CHARSETS[msh18.trim().toUpperCase()];
}

// Sets in which the second byte of a double-byte character can be an ASCII byte, a delimiter
// included (BIG-5 and GB 18030: 0x40–0x7E, so `|`, `^`, `~` and `\`). An earlier MSH field
// written in one of them can hold a byte that looks like a field separator.
const ASCII_TRAIL_SETS = ['big5', 'gb18030'];

/** The first repetition of MSH-18 in an MSH segment already read as text. */
function msh18Of(msh: string): string {
  // MSH-1 is the field separator itself, so MSH-18 is the 18th item after splitting.
  return (msh.split(msh.charAt(3))[17] ?? '').split(msh.charAt(5))[0]!;
}

/**
 * MSH-18 (its first repetition) read from the raw bytes. Every supported set writes ASCII as
 * ASCII, so the MSH segment can be read byte for byte; but in BIG-5 or GB 18030 a character in an
 * earlier field (a facility name, say) can carry a delimiter byte, which shifts that reading. So a
 * segment with bytes over 0x7F is first read in each of those sets, and a set wins when the MSH-18
 * read in it names it.
 */
function declaredCharset(payload: Buffer): string {
  const end = payload.findIndex((b) => b === 0x0d || b === 0x0a);
  const segment = payload.subarray(0, end === -1 ? payload.length : end);
  const msh = segment.toString('latin1');
  if (!msh.startsWith('MSH') || msh.length < 8) throw new Hl7ParseError('CR_MLLP_MESSAGE_MALFORMED', 'expected an HL7 v2 message starting with an MSH segment and its encoding characters');
  for (const set of segment.some((b) => b > 0x7f) ? ASCII_TRAIL_SETS : []) {
    const named = msh18Of(iconv.decode(segment, set));
    if (charsetFor(named) === set) return named;
  }
  return msh18Of(msh);
}

/** Decodes and parses one HL7 v2 message as MSH-18 says; throws Hl7ParseError. */
export function parseHl7(payload: Buffer): ParsedHl7 {
  const charset = declaredCharset(payload);
  const encoding = charsetFor(charset);
  if (!encoding) throw new Hl7ParseError('CR_MLLP_CHARSET_UNSUPPORTED', 'MSH-18: this character set is not supported; expected ASCII, UNICODE UTF-8, 8859/n, GB 18030-2000, KS X 1001 or BIG-5');
  let text: string;
  try {
    text = encoding === 'utf-8' ? utf8.decode(payload) : iconv.decode(payload, encoding);
  } catch {
    throw new Hl7ParseError('CR_MLLP_MESSAGE_MALFORMED', 'the message is not valid in the character set MSH-18 names');
  }
  const fieldSeparator = text.charAt(3);
  const encodingChars = text.slice(4, 8);
  if (!/^[^A-Za-z0-9\r\n]$/.test(fieldSeparator) || encodingChars.length !== 4 || new Set(fieldSeparator + encodingChars).size !== 5 || /[A-Za-z0-9\r\n]/.test(encodingChars)) {
    throw new Hl7ParseError('CR_MLLP_MESSAGE_MALFORMED', 'MSH-1/MSH-2: expected a field separator and four distinct encoding characters');
  }
  let message: Hl7Message;
  try {
    message = Hl7Message.parse(text.replace(/[\r\n]+$/, ''));
  } catch {
    throw new Hl7ParseError('CR_MLLP_MESSAGE_MALFORMED', 'expected an HL7 v2 message starting with an MSH segment');
  }
  const msh = message.getSegment('MSH')!;
  const controlId = msh.getField(10)?.toString() ?? '';
  if (controlId === '' || controlId.length > 199) throw new Hl7ParseError('CR_MLLP_MESSAGE_MALFORMED', 'MSH-10: expected a message control id (1 to 199 characters)', controlId === '' ? 101 : undefined);
  if (!msh.getField(9)?.getComponent(1)) throw new Hl7ParseError('CR_MLLP_MESSAGE_MALFORMED', 'MSH-9: expected a message type', 101);
  return {
    message,
    controlId,
    sendingFacility: msh.getField(4)?.getComponent(1) ?? '',
    charset,
    utf8: encoding === 'utf-8',
    enhanced: (msh.getField(15)?.toString() ?? '') !== '',
  };
}

/** Escapes text for an HL7 field per the message's encoding characters (HL7 v2 §2.7). */
export function escapeHl7(text: string, context: Hl7Context): string {
  const e = context.escapeCharacter;
  const map = new Map<string, string>([
    [e, `${e}E${e}`],
    [context.fieldSeparator, `${e}F${e}`],
    [context.componentSeparator, `${e}S${e}`],
    [context.subcomponentSeparator, `${e}T${e}`],
    [context.repetitionSeparator, `${e}R${e}`],
    ['\r', `${e}X0D${e}`],
    ['\n', `${e}X0A${e}`],
  ]);
  return [...text].map((c) => map.get(c) ?? c).join('');
}

/** Acknowledgement codes (HL7 table 0008). */
export type AckCode = 'AA' | 'AE' | 'AR' | 'CA' | 'CE' | 'CR';

/** What goes into an ERR segment: the HL7 error code (table 0357), our CR_ code and a short text. */
export interface AckError {
  /** HL7 table 0357 code, e.g. 207 (application internal error), 100–207. */
  hl7Code: number;
  /** The relay's stable code (documented in docs/errors.md). */
  code: string;
  /** A short, content-free explanation. */
  text: string;
}

const HL7_ERROR_NAMES: Record<number, string> = {
  0: 'Message accepted',
  100: 'Segment sequence error',
  101: 'Required field missing',
  102: 'Data type error',
  103: 'Table value not found',
  200: 'Unsupported message type',
  203: 'Unsupported version id',
  204: 'Unknown key identifier',
  205: 'Duplicate key identifier',
  206: 'Application record locked',
  207: 'Application internal error',
};

/** Options for {@link buildAck}. */
export interface BuildAckOptions {
  /** The message acknowledged; absent when it could not be parsed (MSA-2 is then empty). */
  to?: ParsedHl7;
  /** The acknowledgement code. */
  code: AckCode;
  /** MSA-3: the envelope id on acceptance. */
  text?: string;
  /** ERR segment for a refusal. */
  error?: AckError;
  /** Clock (tests). */
  now?: Date;
}

function hl7Timestamp(date: Date): string {
  return date.toISOString().replace(/[-:T]/g, '').replace(/\.\d+Z$/, '').concat('+0000');
}

/** Builds an ACK in the acknowledged message's encoding characters and character set; returns its bytes. */
export function buildAck(options: BuildAckOptions): Buffer {
  const original = options.to;
  const context = original?.message.context ?? new Hl7Context();
  const msh = original?.message.getSegment('MSH');
  const field = (n: number): string => msh?.getField(n)?.toString() ?? '';
  const trigger = msh?.getField(9)?.getComponent(2) ?? '';
  const c = context.componentSeparator;
  const ackType = trigger ? `ACK${c}${trigger}${c}ACK` : 'ACK';
  const header = [
    'MSH',
    context.getMsh2(),
    field(5) || 'care-relay',
    field(6),
    field(3),
    field(4),
    hl7Timestamp(options.now ?? new Date()),
    '',
    ackType,
    randomUUID().replaceAll('-', '').slice(0, 20),
    field(11) || 'P',
    field(12) || '2.5.1',
    '', '', '', '', '', original?.charset ?? '',
  ];
  while (header.at(-1) === '') header.pop();
  const segments = [
    new Hl7Segment(header, context),
    new Hl7Segment(['MSA', options.code, original?.controlId ?? '', options.text ? escapeHl7(options.text, context) : ''].filter((v, i) => i < 3 || v !== ''), context),
  ];
  if (options.error) {
    const e = options.error;
    const name = HL7_ERROR_NAMES[e.hl7Code] ?? 'Application internal error';
    segments.push(
      new Hl7Segment(['ERR', '', '', `${e.hl7Code}${c}${escapeHl7(name, context)}${c}HL70357`, 'E', `${e.code}${c}${c}care-relay`, '', '', escapeHl7(e.text, context)], context),
    );
  }
  const text = new Hl7Message(segments, context).toString() + '\r';
  const encoding = charsetFor(original?.charset ?? '') ?? 'utf-8';
  return encoding === 'utf-8' ? Buffer.from(text, 'utf8') : iconv.encode(text, encoding);
}

/** An acknowledgement as read back from a peer. */
export interface ReadAck {
  /** MSA-1, upper-cased. */
  code: string;
  /** MSA-2: the control id it acknowledges. */
  controlId: string;
  /** ERR-3.1 (HL7 table 0357 code) when present. */
  hl7Error?: string;
}

/** Reads an ACK (MSA-1, MSA-2); throws Hl7ParseError when it is not a valid acknowledgement. */
export function readAck(payload: Buffer): ReadAck {
  const parsed = parseHl7(payload);
  const msa = parsed.message.getSegment('MSA');
  const code = msa?.getField(1)?.toString().trim().toUpperCase() ?? '';
  if (!msa || !/^(AA|AE|AR|CA|CE|CR)$/.test(code)) throw new Hl7ParseError('CR_MLLP_MESSAGE_MALFORMED', 'MSA-1: expected an acknowledgement code');
  const err = parsed.message.getSegment('ERR')?.getField(3)?.getComponent(1);
  return { code, controlId: msa.getField(2)?.toString() ?? '', ...(err ? { hl7Error: err } : {}) };
}

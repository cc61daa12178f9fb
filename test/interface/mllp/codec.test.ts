import fc from 'fast-check';
import iconvModule from 'iconv-lite';
import { describe, expect, it } from 'vitest';
import { FrameDecoder, frame } from '../../../services/interface/mllp/frame.ts';
import { buildAck, escapeHl7, Hl7ParseError, parseHl7, readAck } from '../../../services/interface/mllp/hl7.ts';

const iconv = iconvModule as unknown as typeof iconvModule.default;
const VT = '\x0b';
const FS_CR = '\x1c\r';
const ORU = 'MSH|^~\\&|LAB|NORTH^1.2.3^ISO|EMR|HOSP|20260101120000||ORU^R01^ORU_R01|CTRL-1|P|2.5.1\rPID|1||123^^^HOSP^MR||Doe^Jane\rOBX|1|TX|x||a\\F\\b\r';

function payloads(decoder: FrameDecoder, chunks: Buffer[]): Array<string> {
  return chunks.flatMap((c) => decoder.push(c)).map((e) => (e.kind === 'message' ? e.payload.toString('latin1') : `!${e.code}`));
}

describe('MLLP framing', () => {
  it('wraps a message in VT ... FS CR', () => {
    expect(frame(Buffer.from('MSH|x')).toString('latin1')).toBe(`${VT}MSH|x${FS_CR}`);
  });

  it('reassembles frames split at any byte, including between FS and CR, and several per chunk', () => {
    fc.assert(
      fc.property(fc.array(fc.stringMatching(/^[ -~\r]{1,40}$/), { minLength: 1, maxLength: 4 }), fc.array(fc.nat(200), { maxLength: 6 }), (messages, cuts) => {
        const wire = Buffer.concat(messages.map((m) => frame(Buffer.from(m, 'latin1'))));
        const points = [...new Set(cuts.map((c) => c % (wire.length + 1)))].sort((a, b) => a - b);
        const chunks: Buffer[] = [];
        let at = 0;
        for (const p of [...points, wire.length]) {
          chunks.push(wire.subarray(at, p));
          at = p;
        }
        expect(payloads(new FrameDecoder(1000), chunks)).toEqual(messages);
      }),
    );
  });

  it('tolerates CR/LF between frames (engines that end a frame with a newline)', () => {
    expect(payloads(new FrameDecoder(100), [Buffer.from(`${VT}A${FS_CR}\n\r${VT}B${FS_CR}`, 'latin1')])).toEqual(['A', 'B']);
  });

  it('refuses bytes outside a frame, FS without CR and a nested start block', () => {
    expect(payloads(new FrameDecoder(100), [Buffer.from('MSH|no framing', 'latin1')])).toEqual(['!CR_MLLP_FRAME_INVALID']);
    expect(payloads(new FrameDecoder(100), [Buffer.from(`${VT}A\x1cX`, 'latin1')])).toEqual(['!CR_MLLP_FRAME_INVALID']);
    expect(payloads(new FrameDecoder(100), [Buffer.from(`${VT}A${VT}B${FS_CR}`, 'latin1')])).toEqual(['!CR_MLLP_FRAME_INVALID']);
  });

  it('an oversize frame fails as soon as it passes the limit, before its end arrives, and nothing more is decoded', () => {
    const decoder = new FrameDecoder(10);
    expect(payloads(decoder, [Buffer.from(`${VT}0123456789`, 'latin1')])).toEqual([]);
    expect(decoder.inFrame).toBe(true);
    expect(payloads(decoder, [Buffer.from('X', 'latin1')])).toEqual(['!CR_MLLP_FRAME_TOO_LARGE']);
    expect(payloads(decoder, [Buffer.from(`${VT}ok${FS_CR}`, 'latin1')])).toEqual([]);
  });
});

describe('HL7 v2 parsing and acknowledgements', () => {
  it('reads MSH-10, MSH-4 and the acknowledgement mode', () => {
    const p = parseHl7(Buffer.from(ORU));
    expect(p).toMatchObject({ controlId: 'CTRL-1', sendingFacility: 'NORTH', charset: '', utf8: true, enhanced: false });
    expect(parseHl7(Buffer.from(ORU.replace('2.5.1\r', '2.5.1|||AL|NE\r'))).enhanced).toBe(true);
  });

  it('honours non-default encoding characters from MSH-1/MSH-2', () => {
    const p = parseHl7(Buffer.from('MSH#:*!@#LAB#FAC:X#EMR#HOSP#2026##ADT:A01#C#P#2.5\rPID#1\r'));
    expect(p).toMatchObject({ controlId: 'C', sendingFacility: 'FAC' });
    const ack = buildAck({ to: p, code: 'AR', error: { hl7Code: 207, code: 'CR_X', text: 'a#b:c' } }).toString('latin1');
    expect(ack.startsWith('MSH#:*!@#EMR#HOSP#LAB#FAC:X#')).toBe(true);
    // Our own text is escaped with the message's escape character.
    expect(ack).toContain('a!F!b!S!c');
    expect(readAck(Buffer.from(ack, 'latin1'))).toMatchObject({ code: 'AR', controlId: 'C', hl7Error: '207' });
  });

  it('decodes by MSH-18 and answers in the same character set', () => {
    const text = 'MSH|^~\\&|LAB|FAC|EMR|HOSP|2026||ADT^A01|Ü-1|P|2.5||||||8859/1\rPID|1||||Müller\r';
    const bytes = iconv.encode(text, 'iso-8859-1');
    const p = parseHl7(bytes);
    expect(p).toMatchObject({ controlId: 'Ü-1', charset: '8859/1', utf8: false });
    const ack = buildAck({ to: p, code: 'AA', text: 'env-1' });
    expect(iconv.decode(ack, 'iso-8859-1')).toContain('MSA|AA|Ü-1|env-1');
    expect(readAck(ack)).toMatchObject({ code: 'AA', controlId: 'Ü-1' });
  });

  it('reads MSH-18 in BIG-5 and GB 18030 when an earlier field holds a character whose second byte is a delimiter', () => {
    // 咽 is 0xAB 0x7C in BIG-5 and 億 0x83 0x7C in GB 18030: read byte for byte, each looks like
    // a field separator and shifts MSH-18 by one field.
    for (const [set, name, char] of [['BIG-5', 'big5', '咽'], ['GB 18030-2000', 'gb18030', '億']] as const) {
      const text = `MSH|^~\\&|LAB|North ${char} Clinic|EMR|HOSP|2026||ADT^A01|C-${char}|P|2.5||||||${set}\rPID|1||||${char}\r`;
      const bytes = iconv.encode(text, name);
      expect(bytes.toString('latin1').split('\r')[0]!.split('|')[17], set).not.toBe(set);
      const p = parseHl7(bytes);
      expect(p, set).toMatchObject({ controlId: `C-${char}`, sendingFacility: `North ${char} Clinic`, charset: set, utf8: false });
      expect(p.message.getSegment('PID')?.getField(5)?.toString()).toBe(char);
      const ack = buildAck({ to: p, code: 'AA', text: 'env-1' });
      expect(iconv.decode(ack, name), set).toContain(`|North ${char} Clinic|`);
      expect(readAck(ack), set).toMatchObject({ code: 'AA', controlId: `C-${char}` });
    }
  });

  it('refuses an unsupported MSH-18, bytes invalid in the declared set, and a message without MSH-10', () => {
    const code = (bytes: Buffer): string => {
      try {
        parseHl7(bytes);
        return 'parsed';
      } catch (err) {
        return (err as Hl7ParseError).code;
      }
    };
    expect(code(Buffer.from('MSH|^~\\&|A|B|C|D|2026||ADT^A01|1|P|2.5||||||UNICODE UTF-16\r'))).toBe('CR_MLLP_CHARSET_UNSUPPORTED');
    expect(code(Buffer.concat([Buffer.from('MSH|^~\\&|A|B|C|D|2026||ADT^A01|1|P|2.5\rPID|'), Buffer.from([0xff, 0xfe])]))).toBe('CR_MLLP_MESSAGE_MALFORMED');
    expect(code(Buffer.from('MSH|^~\\&|A|B|C|D|2026||ADT^A01||P|2.5\r'))).toBe('CR_MLLP_MESSAGE_MALFORMED');
    expect(code(Buffer.from('PID|1\r'))).toBe('CR_MLLP_MESSAGE_MALFORMED');
    expect(code(Buffer.from('MSH|^^\\&|A\r'))).toBe('CR_MLLP_MESSAGE_MALFORMED');
  });

  it('a NAK for an unreadable message has an empty MSA-2 and an ERR segment with the code', () => {
    const ack = buildAck({ code: 'AR', error: { hl7Code: 100, code: 'CR_MLLP_MESSAGE_MALFORMED', text: 'expected MSH' } }).toString('utf8');
    const lines = ack.split('\r');
    expect(lines[1]).toBe('MSA|AR|');
    expect(lines[2]).toBe('ERR|||100^Segment sequence error^HL70357|E|CR_MLLP_MESSAGE_MALFORMED^^care-relay|||expected MSH');
    expect(ack.endsWith('\r')).toBe(true);
  });

  it('escapes every delimiter and the escape character itself', () => {
    const p = parseHl7(Buffer.from(ORU));
    expect(escapeHl7('a|b^c~d&e\\f\rg', p.message.context)).toBe('a\\F\\b\\S\\c\\R\\d\\T\\e\\E\\f\\X0D\\g');
  });

  it('readAck refuses a message without a valid MSA-1', () => {
    expect(() => readAck(Buffer.from('MSH|^~\\&|A|B|C|D|2026||ACK|9|P|2.5\rMSA|XX|1\r'))).toThrow(Hl7ParseError);
    expect(() => readAck(Buffer.from('MSH|^~\\&|A|B|C|D|2026||ACK|9|P|2.5\r'))).toThrow(Hl7ParseError);
  });
});

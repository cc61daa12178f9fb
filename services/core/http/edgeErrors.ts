import type { Socket } from 'node:net';
import { STATUS_CODES } from 'node:http';
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import type { RelayError } from '../errors/relayError.ts';
import { httpErrors } from './errors.ts';
import { PROBLEM_CONTENT_TYPE, problemDocument, sendProblem } from './problem.ts';

/**
 * fastify `frameworkErrors`: errors raised while routing, before any route or hook runs
 * (a URL that cannot be decoded, an over-long path parameter). fastify's own answer quotes
 * the raw path, which can hold an identifier; this one is a problem that quotes nothing.
 */
export function frameworkErrorHandler(error: FastifyError, request: FastifyRequest, reply: FastifyReply): void {
  const pub = error.code === 'FST_ERR_MAX_PARAM_LENGTH' ? httpErrors.uriTooLong() : error.code === 'FST_ERR_BAD_URL' ? httpErrors.badUrl() : httpErrors.badRequest();
  request.log.info({ code: pub.code, status: pub.status }, 'request rejected');
  void sendProblem(reply, pub);
}

/** The public error for a Node HTTP parser or socket-level error code. */
export function clientErrorFor(code: string | undefined): RelayError {
  switch (code) {
    case 'ERR_HTTP_REQUEST_TIMEOUT':
      return httpErrors.requestTimeout();
    case 'HPE_HEADER_OVERFLOW':
      return httpErrors.headersTooLarge();
    case 'HPE_INVALID_METHOD':
      return httpErrors.methodNotAllowed();
    default:
      return httpErrors.badRequest();
  }
}

/**
 * fastify `clientErrorHandler` (the server's `clientError` event): a request Node could not
 * parse or that timed out (408, 431, 400, unknown method) gets a problem document written on
 * the socket, then the socket is closed. Nothing of the request is quoted or logged.
 */
export function createClientErrorHandler(logger: Logger): (error: NodeJS.ErrnoException, socket: Socket) => void {
  return (error, socket) => {
    if (error.code === 'ECONNRESET' || socket.destroyed) return;
    const pub = clientErrorFor(error.code);
    const status = pub.status ?? 400;
    logger.info({ code: pub.code, status, cause: error.code }, 'client error');
    // The parser may have read part of a request already: a response now is only safe once.
    if (socket.writable && !(socket as Socket & { _httpMessage?: { headersSent?: boolean } })._httpMessage?.headersSent) {
      const body = JSON.stringify(problemDocument(pub));
      socket.write(
        `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? 'Error'}\r\n` +
          `Content-Type: ${PROBLEM_CONTENT_TYPE}\r\nContent-Length: ${Buffer.byteLength(body)}\r\n` +
          'Cache-Control: no-store\r\nX-Content-Type-Options: nosniff\r\nConnection: close\r\n\r\n' +
          body,
      );
    }
    socket.destroySoon();
  };
}

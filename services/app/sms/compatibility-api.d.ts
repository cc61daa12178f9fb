// The package's typings are unreachable under its "exports" map (nodenext resolution), so this
// declares the subset of @signalwire/compatibility-api 3.x that the SMS code uses.
declare module '@signalwire/compatibility-api' {
  /** A Compatibility API message, as the SDK maps the JSON. */
  export interface MessageInstance {
    sid: string;
    accountSid: string;
    status: string;
    body: string | null;
    numMedia: string;
    numSegments: string;
    direction: string;
    from: string | null;
    to: string;
    dateCreated: Date | null;
    dateSent: Date | null;
    dateUpdated: Date | null;
    errorCode: number | null;
  }
  /** A media item of a message. */
  export interface MediaInstance {
    sid: string;
    parentSid: string;
    contentType: string;
    dateCreated: Date | null;
  }
  /** One page of a list, with the absolute URL of the next. */
  export interface SdkPage<T> {
    instances: T[];
    nextPageUrl?: string;
  }
  /** Options of a message list page. */
  export interface MessagePageOptions {
    pageSize?: number;
    pageNumber?: number;
    pageToken?: string;
    dateSent?: Date;
    dateSentAfter?: Date;
    dateSentBefore?: Date;
    to?: string;
    from?: string;
  }
  export interface MediaContext {
    fetch(): Promise<MediaInstance>;
    remove(): Promise<boolean>;
  }
  export interface MediaList {
    (sid: string): MediaContext;
    page(opts?: { pageSize?: number }): Promise<SdkPage<MediaInstance>>;
    getPage(targetUrl: string): Promise<SdkPage<MediaInstance>>;
    list(opts?: { limit?: number; pageSize?: number }): Promise<MediaInstance[]>;
  }
  export interface MessageContext {
    fetch(): Promise<MessageInstance>;
    update(opts: { body?: string }): Promise<MessageInstance>;
    remove(): Promise<boolean>;
    media: MediaList;
  }
  export interface MessageCreateOptions {
    to: string;
    from?: string;
    body?: string;
    mediaUrl?: string | string[];
    statusCallback?: string;
  }
  export interface MessageList {
    (sid: string): MessageContext;
    create(opts: MessageCreateOptions): Promise<MessageInstance>;
    page(opts?: MessagePageOptions): Promise<SdkPage<MessageInstance>>;
    getPage(targetUrl: string): Promise<SdkPage<MessageInstance>>;
    list(opts?: MessagePageOptions & { limit?: number }): Promise<MessageInstance[]>;
  }
  /** The client RestClient returns (a twilio-node 3.x client pointed at the space). */
  export interface CompatibilityApi {
    messages: MessageList;
  }
  /** Options of RestClient: the space, and the pluggable http client. */
  export interface CompatibilityAPIRestClientOptions {
    signalwireSpaceUrl?: string;
    httpClient?: { request(opts: unknown): Promise<unknown> };
    timeout?: number;
  }
  /** Creates a client for the project. */
  export function RestClient(projectId: string, apiToken: string, opts?: CompatibilityAPIRestClientOptions): CompatibilityApi;
  export namespace RestClient {
    /** Twilio-compatible webhook signature check (tries the URL with and without its port). */
    function validateRequest(signingKey: string, signature: string, url: string, params: Record<string, unknown>): boolean;
  }
}

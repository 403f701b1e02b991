export { httpHandler, json, ROUTE_SPEC } from './handler';
export { readBodyBounded, PayloadTooLargeError } from './body';
export type { BodySource } from './body';
export type { RouteSpec, RouteInput } from './handler';
export { problemResponse, PROBLEM_CONTENT_TYPE } from './problem';
export type { Problem } from './problem';
export { ApiAuthenticator } from './auth';
export type { Principal } from './auth';
export { escapeHtml, htmlPage } from './htmlPage';

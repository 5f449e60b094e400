// An ambient declaration (this file has no import or export), for tsconfig.k6.json.
// k6 0.50–1.5 had today's k6/websockets as k6/experimental/websockets, with the same API;
// @types/k6 2.x no longer declares the old name (k6 2.0 removed it).
declare module "k6/experimental/websockets" {
  export * from "k6/websockets";
}

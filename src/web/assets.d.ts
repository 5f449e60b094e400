// Files the server imports `with { type: "file" }`: Bun gives their path (inside the single
// executable when compiled), which Bun.file() serves.
declare module "*.svg" {
  const path: string;
  export default path;
}

// Ambient declarations. Files embedded into the compiled binary with `import x from "..." with { type: "file" }`: a path.
declare module "*/busybox" {
  const path: string;
  export default path;
}
declare module "*.so" {
  const path: string;
  export default path;
}
declare module "*/nexcage-crun-helper" {
  const path: string;
  export default path;
}

// JSON.rawJSON (TC39 "JSON.parse source text access", in Bun's JavaScriptCore): emit exact big integers
interface JSON {
  rawJSON(text: string): { readonly rawJSON: string };
}
declare module "*/nexcage-lxc-monitor" {
  const path: string;
  export default path;
}
declare module "*/nexcage-lxc-init" {
  const path: string;
  export default path;
}

export { ModelFilesError } from "./errors";
export { type FetchOptions, fetchModelFiles } from "./fetch";
export { MODEL_PREFIX, modelKey } from "./keys";
export { type PublishOptions, publishModel } from "./publish";
export { type SiteInfo, siteInfoOf } from "./site-info";

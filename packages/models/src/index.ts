export { ModelFilesError } from "./errors";
export { type FetchOptions, fetchModelFiles } from "./fetch";
export { MODEL_PREFIX, modelKey } from "./keys";
export { checkPromotion, type PromotionCheck, type PromotionRefusal } from "./promotion";
export { type PublishOptions, publishModel } from "./publish";
export { type SiteInfo, siteInfoOf } from "./site-info";

import BatonFeatures
import Foundation

extension Engine {
    /// A committed feature write stored its view's update event: act on it now (start
    /// triggered runs, wake tasks waiting for fresh data, close an open SLA miss) rather than at
    /// the next external-change check.
    func featuresWritten() async {
        await processEvents()
    }

    /// Feature services with the pipelines and models that use them, for lineage.
    public func featureRegistry() -> FeatureRegistry { features.registry }
}

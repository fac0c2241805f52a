import BatonKit

// `customer-worker describe` tells Baton about the pipelines (through the manifest in
// ../pipelines); `customer-worker --server URL` runs their steps.
await Worker(customerData).main()

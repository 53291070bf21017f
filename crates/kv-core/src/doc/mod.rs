//! Vendor-neutral document machinery (BSON documents, key schemas, order-preserving composite key
//! encoding, condition expressions, partial updates, secondary indexes). Filled by the Huawei work.

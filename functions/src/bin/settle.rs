//! The settle Lambda function: writes batches of stream records to MongoDB.

use exchange_functions::SettleStore;
use exchange_functions::lambda::{self, Batch};
use exchange_functions::mongo::MongoStore;
use lambda_runtime::{Error, LambdaEvent, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda::init_logging();
    let url = lambda::required("EXCHANGE_MONGODB_URL")?;
    let db = std::env::var("EXCHANGE_MONGODB_DATABASE").unwrap_or_else(|_| "exchange".into());
    let store = MongoStore::connect(&url, &db).await?;
    store.prepare().await?;
    let store = &store;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Batch>| async move {
        lambda::settle(store, event).await
    }))
    .await
}

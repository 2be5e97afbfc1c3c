//! The rollup Lambda function: writes batches of stream records to PostgreSQL/TimescaleDB.

use exchange_functions::RollupStore;
use exchange_functions::lambda::{self, Batch};
use exchange_functions::postgres::PgStore;
use lambda_runtime::{Error, LambdaEvent, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda::init_logging();
    let store = PgStore::connect(&lambda::required("EXCHANGE_DATABASE_URL")?).await?;
    store.prepare().await?;
    let store = &store;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Batch>| async move {
        lambda::rollup(store, event).await
    }))
    .await
}

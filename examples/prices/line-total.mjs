// One job per CSV row: the row arrives as an object keyed by the header, values as text.
// Run: npx deskgrid run examples/prices/line-total.mjs examples/prices/prices.csv
export default async function lineTotal(row, ctx) {
  const price = Number(row.unit_price);
  const quantity = Number(row.quantity);
  const discount = Number(row.discount);
  if (!Number.isFinite(price) || !Number.isFinite(quantity)) {
    throw new Error(`row ${ctx.index}: price and quantity must be numbers`);
  }
  const total = Math.round(price * quantity * (1 - discount) * 100) / 100;
  ctx.progress(1, row.product);
  return { product: row.product, total };
}

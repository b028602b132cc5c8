character mara
  look "a"

import streamlit as st

st.set_page_config(page_title="MNIST Model Lab", page_icon="✍️", layout="wide")
st.title("MNIST Model Lab")
st.write("The dashboard is being built. The library and CLI work: `python -m mnist_core --help`.")
